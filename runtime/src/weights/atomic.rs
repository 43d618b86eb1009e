//! Output directories that appear complete or not at all.
//!
//! Everything is written into a hidden sibling directory, renamed into place on success
//! (atomic: same parent, same filesystem) and removed if dropped uncommitted, so an error never
//! leaves a half-written checkpoint at the final path.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::WeightsError;

/// Distinguishes temp dirs made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A temporary directory that becomes `final_dir` on [`AtomicDir::commit`].
#[derive(Debug)]
pub struct AtomicDir {
    final_dir: PathBuf,
    temp: PathBuf,
    force: bool,
    committed: bool,
}

impl AtomicDir {
    /// Creates the temp dir next to `final_dir`. Refuses an existing `final_dir` unless
    /// `force`; with `force` the old one is replaced only at commit time.
    pub fn create(final_dir: &Path, force: bool) -> Result<Self, WeightsError> {
        if !force && exists(final_dir)? {
            return Err(WeightsError::AlreadyExists {
                path: final_dir.to_path_buf(),
            });
        }
        let name = final_dir
            .file_name()
            .ok_or_else(|| WeightsError::Io {
                path: final_dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "output path has no final directory name",
                ),
            })?
            .to_string_lossy()
            .into_owned();
        let parent = match final_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(WeightsError::io(&parent))?;
        let temp = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let candidate = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
            match std::fs::create_dir(&candidate) {
                Ok(()) => break candidate,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(WeightsError::Io {
                        path: candidate,
                        source: e,
                    })
                }
            }
        };
        Ok(AtomicDir {
            final_dir: final_dir.to_path_buf(),
            temp,
            force,
            committed: false,
        })
    }

    /// Where to write the contents.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// The path the contents will have after commit.
    pub fn final_path(&self) -> &Path {
        &self.final_dir
    }

    /// Renames the temp dir to the final path (replacing an old one if `force`) and returns it.
    pub fn commit(mut self) -> Result<PathBuf, WeightsError> {
        let mut old = None;
        if exists(&self.final_dir)? {
            if !self.force {
                return Err(WeightsError::AlreadyExists {
                    path: self.final_dir.clone(),
                });
            }
            // Move the old one aside first so the final path is never half old, half new.
            let mut aside = self.temp.clone().into_os_string();
            aside.push(".old");
            let aside = PathBuf::from(aside);
            std::fs::rename(&self.final_dir, &aside).map_err(WeightsError::io(&self.final_dir))?;
            old = Some(aside);
        }
        if let Err(source) = std::fs::rename(&self.temp, &self.final_dir) {
            if let Some(aside) = &old {
                // Best effort: put the old output back.
                let _ = std::fs::rename(aside, &self.final_dir);
            }
            return Err(WeightsError::Io {
                path: self.final_dir.clone(),
                source,
            });
        }
        self.committed = true;
        if let Some(aside) = old {
            let is_dir = std::fs::symlink_metadata(&aside).is_ok_and(|m| m.is_dir());
            let removed = if is_dir {
                std::fs::remove_dir_all(&aside)
            } else {
                std::fs::remove_file(&aside)
            };
            removed.map_err(WeightsError::io(&aside))?;
        }
        Ok(self.final_dir.clone())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing to report from a destructor; a leftover hidden dir is harmless.
            let _ = std::fs::remove_dir_all(&self.temp);
        }
    }
}

fn exists(path: &Path) -> Result<bool, WeightsError> {
    // symlink_metadata: a dangling symlink at the final path still counts as existing.
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(WeightsError::io(path)(e)),
    }
}
