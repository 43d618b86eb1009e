//! Checks a checkpoint's tensor names, shapes and dtypes against what a model expects,
//! reporting every mismatch at once so one run shows the whole picture.

use std::collections::BTreeMap;
use std::fmt;

use super::Checkpoint;
use crate::tensor::DType;

/// Problems listed in full before the rest are only counted.
const MAX_LISTED: usize = 25;

/// One way a checkpoint differs from the expected layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutProblem {
    Missing {
        key: String,
        expected: Vec<usize>,
    },
    WrongShape {
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    NotFloat {
        key: String,
        dtype: DType,
    },
    WrongDtype {
        key: String,
        expected: DType,
        found: DType,
    },
    Unexpected {
        key: String,
        shape: Vec<usize>,
    },
}

impl LayoutProblem {
    pub fn key(&self) -> &str {
        match self {
            LayoutProblem::Missing { key, .. }
            | LayoutProblem::WrongShape { key, .. }
            | LayoutProblem::NotFloat { key, .. }
            | LayoutProblem::WrongDtype { key, .. }
            | LayoutProblem::Unexpected { key, .. } => key,
        }
    }

    /// Order of problems that share a key.
    fn rank(&self) -> u8 {
        match self {
            LayoutProblem::Missing { .. } => 0,
            LayoutProblem::WrongShape { .. } => 1,
            LayoutProblem::NotFloat { .. } | LayoutProblem::WrongDtype { .. } => 2,
            LayoutProblem::Unexpected { .. } => 3,
        }
    }
}

impl fmt::Display for LayoutProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutProblem::Missing { key, expected } => {
                write!(f, "missing     `{key}` (expected shape {expected:?})")
            }
            LayoutProblem::WrongShape { key, expected, found } => {
                write!(f, "wrong shape `{key}`: expected {expected:?}, found {found:?}")
            }
            LayoutProblem::NotFloat { key, dtype } => {
                write!(f, "not float   `{key}`: dtype {dtype}, expected a float dtype")
            }
            LayoutProblem::WrongDtype { key, expected, found } => {
                write!(f, "wrong dtype `{key}`: expected {expected}, found {found}")
            }
            LayoutProblem::Unexpected { key, shape } => {
                write!(f, "unexpected  `{key}` (shape {shape:?})")
            }
        }
    }
}

/// Every difference between a checkpoint and the expected layout, sorted by tensor name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LayoutError {
    /// What was checked (the checkpoint directory).
    pub location: String,
    pub problems: Vec<LayoutProblem>,
}

impl LayoutError {
    fn count(&self, pred: impl Fn(&LayoutProblem) -> bool) -> usize {
        self.problems.iter().filter(|p| pred(p)).count()
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts = [
            (self.count(|p| matches!(p, LayoutProblem::Missing { .. })), "missing"),
            (
                self.count(|p| matches!(p, LayoutProblem::Unexpected { .. })),
                "unexpected",
            ),
            (
                self.count(|p| matches!(p, LayoutProblem::WrongShape { .. })),
                "with the wrong shape",
            ),
            (
                self.count(|p| matches!(p, LayoutProblem::NotFloat { .. })),
                "not floating point",
            ),
            (
                self.count(|p| matches!(p, LayoutProblem::WrongDtype { .. })),
                "with the wrong dtype",
            ),
        ];
        let summary: Vec<String> = counts
            .iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        write!(
            f,
            "{} does not match the expected layout ({} tensor(s): {})",
            self.location,
            self.problems.len(),
            summary.join(", ")
        )?;
        for p in self.problems.iter().take(MAX_LISTED) {
            write!(f, "\n  {p}")?;
        }
        if self.problems.len() > MAX_LISTED {
            write!(f, "\n  ... and {} more", self.problems.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

/// Checks that `ckpt` holds exactly the `expected` (name, shape) tensors, all floating point.
pub fn check_layout(ckpt: &Checkpoint, expected: &[(String, Vec<usize>)]) -> Result<(), LayoutError> {
    let found = ckpt
        .keys()
        .filter_map(|k| ckpt.info(k).map(|(dtype, shape)| (k, dtype, shape)));
    check_entries(&ckpt.dir().display().to_string(), found, expected)
}

/// [`check_layout`] over any (name, dtype, shape) listing, e.g. one [`super::SafetensorsFile`].
/// If `expected` names a tensor twice, the first shape counts.
pub fn check_entries<'a>(
    location: &str,
    found: impl IntoIterator<Item = (&'a str, DType, &'a [usize])>,
    expected: &[(String, Vec<usize>)],
) -> Result<(), LayoutError> {
    let expected = expected.iter().map(|(k, s)| (k.as_str(), s.as_slice(), None));
    check(location, found, expected)
}

/// [`check_entries`] with an exact dtype per expected tensor (typed layouts declare one).
pub fn check_entries_dtype<'a>(
    location: &str,
    found: impl IntoIterator<Item = (&'a str, DType, &'a [usize])>,
    expected: impl IntoIterator<Item = (&'a str, &'a [usize], DType)>,
) -> Result<(), LayoutError> {
    let expected = expected.into_iter().map(|(k, s, d)| (k, s, Some(d)));
    check(location, found, expected)
}

/// Both checks: `None` as the expected dtype accepts any float dtype.
fn check<'a, 'b>(
    location: &str,
    found: impl IntoIterator<Item = (&'a str, DType, &'a [usize])>,
    expected: impl IntoIterator<Item = (&'b str, &'b [usize], Option<DType>)>,
) -> Result<(), LayoutError> {
    let found: BTreeMap<&str, (DType, &[usize])> =
        found.into_iter().map(|(k, dtype, shape)| (k, (dtype, shape))).collect();
    let mut wanted: BTreeMap<&str, (&[usize], Option<DType>)> = BTreeMap::new();
    for (key, shape, dtype) in expected {
        wanted.entry(key).or_insert((shape, dtype));
    }

    let mut problems = Vec::new();
    for (&key, &(shape, want_dtype)) in &wanted {
        match found.get(key) {
            None => problems.push(LayoutProblem::Missing {
                key: key.to_string(),
                expected: shape.to_vec(),
            }),
            Some(&(dtype, got)) => {
                if got != shape {
                    problems.push(LayoutProblem::WrongShape {
                        key: key.to_string(),
                        expected: shape.to_vec(),
                        found: got.to_vec(),
                    });
                }
                match want_dtype {
                    Some(expected) if expected != dtype => problems.push(LayoutProblem::WrongDtype {
                        key: key.to_string(),
                        expected,
                        found: dtype,
                    }),
                    None if !dtype.is_float() => problems.push(LayoutProblem::NotFloat {
                        key: key.to_string(),
                        dtype,
                    }),
                    _ => {}
                }
            }
        }
    }
    for (&key, &(_, shape)) in &found {
        if !wanted.contains_key(key) {
            problems.push(LayoutProblem::Unexpected {
                key: key.to_string(),
                shape: shape.to_vec(),
            });
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    problems.sort_by(|a, b| a.key().cmp(b.key()).then_with(|| a.rank().cmp(&b.rank())));
    Err(LayoutError {
        location: location.to_string(),
        problems,
    })
}
