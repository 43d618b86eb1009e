//! The math of each IR op on [`Array`](super::Array)s, one file per op family.
