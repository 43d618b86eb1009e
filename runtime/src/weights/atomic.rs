//! Outputs that appear complete or not at all: directories ([`AtomicDir`]) and single files
//! ([`write_file_atomic`]).
//!
//! Everything is written under a hidden sibling name (`.NAME.tmp-PID-N`), synced to disk (files,
//! then the directory), renamed into place (atomic: same parent, same filesystem) and removed if
//! dropped uncommitted, so an error never leaves a half-written output at the final path. Temps
//! of a killed process are removed by the next output to the same path ([`remove_stale_temps`]);
//! a signal handler can remove the live ones with [`remove_live_temps`].

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::WeightsError;

/// Distinguishes temps made by one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);
/// Temps of this process not yet committed or removed, for [`remove_live_temps`].
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<PathBuf>> {
    // A panic while holding the lock leaves a valid list.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(temp: &Path) {
    live().retain(|p| p != temp);
}

/// Removes every temp this process is writing (directories and files); for a SIGINT/SIGTERM
/// handler that exits right after. Returns the paths removed.
pub fn remove_live_temps() -> Vec<PathBuf> {
    let temps = std::mem::take(&mut *live());
    temps.into_iter().filter(|t| remove_path(t).is_ok()).collect()
}

/// A temporary directory that becomes `final_dir` on [`AtomicDir::commit`].
#[derive(Debug)]
pub struct AtomicDir {
    final_dir: PathBuf,
    temp: PathBuf,
    force: bool,
    committed: bool,
}

impl AtomicDir {
    /// Creates the temp dir next to `final_dir` (after removing stale temps of dead processes
    /// there). Refuses an existing `final_dir` unless `force`; with `force` the old one is
    /// replaced only at commit time.
    pub fn create(final_dir: &Path, force: bool) -> Result<Self, WeightsError> {
        if !force && exists(final_dir)? {
            return Err(WeightsError::AlreadyExists {
                path: final_dir.to_path_buf(),
            });
        }
        let (parent, name) = split(final_dir)?;
        std::fs::create_dir_all(&parent).map_err(WeightsError::io(&parent))?;
        remove_stale_temps(&parent, &name);
        let temp = new_temp(&parent, &name, |p| std::fs::create_dir(p))?;
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

    /// Syncs the contents, renames the temp dir to the final path (replacing an old one if
    /// `force`), syncs the parent directory, and returns the final path.
    pub fn commit(mut self) -> Result<PathBuf, WeightsError> {
        sync_tree(&self.temp)?;
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
        forget(&self.temp);
        sync_parent(&self.final_dir)?;
        if let Some(aside) = old {
            remove_path(&aside).map_err(WeightsError::io(&aside))?;
        }
        Ok(self.final_dir.clone())
    }
}

impl Drop for AtomicDir {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing to report from a destructor; a leftover hidden dir is removed by the next
            // output to the same path.
            let _ = std::fs::remove_dir_all(&self.temp);
            forget(&self.temp);
        }
    }
}

/// Writes `path` atomically: `write` fills a temp file beside it, which is synced and renamed
/// into place (then the directory is synced). An existing `path` is refused unless `force`,
/// also if it appears while writing. On error the temp is removed and `path` is untouched.
pub fn write_file_atomic(
    path: &Path,
    force: bool,
    write: impl FnOnce(&Path) -> Result<(), WeightsError>,
) -> Result<(), WeightsError> {
    if !force && exists(path)? {
        return Err(WeightsError::AlreadyExists {
            path: path.to_path_buf(),
        });
    }
    let (parent, name) = split(path)?;
    remove_stale_temps(&parent, &name);
    let temp = new_temp(&parent, &name, |p| std::fs::File::create_new(p).map(drop))?;
    let result = write(&temp).and_then(|()| {
        sync_file(&temp)?;
        if force {
            return std::fs::rename(&temp, path).map_err(WeightsError::io(path));
        }
        // A hard link fails if `path` exists by now: no-clobber without a race. Where links are
        // not supported, check then rename.
        match std::fs::hard_link(&temp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists || exists(path)? => {
                Err(WeightsError::AlreadyExists {
                    path: path.to_path_buf(),
                })
            }
            Err(_) => std::fs::rename(&temp, path).map_err(WeightsError::io(path)),
        }
    });
    // After a rename the temp is gone; after a link (or an error) it is removed here.
    let _ = std::fs::remove_file(&temp);
    forget(&temp);
    result?;
    sync_parent(path)
}

/// The canonical form of an output path that may not exist yet: its nearest existing ancestor
/// canonicalised (symlinks resolved) with the missing components appended. `..` among the
/// missing components is refused: creating them would create directories it then leaves.
pub fn canonical_target(path: &Path) -> Result<PathBuf, WeightsError> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map_err(WeightsError::io(path))?.join(path)
    };
    let mut missing: Vec<OsString> = Vec::new();
    let mut existing = absolute.as_path();
    loop {
        match existing.canonicalize() {
            Ok(canonical) => {
                let mut out = canonical;
                for part in missing.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(WeightsError::io(existing)(e)),
        }
        match existing.components().next_back() {
            Some(Component::Normal(name)) => missing.push(name.to_os_string()),
            Some(Component::CurDir) => {}
            _ => {
                return Err(WeightsError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "`..` after a directory that does not exist; name the output without it",
                    ),
                })
            }
        }
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
}

/// Removes temps beside `NAME` (`.NAME.tmp-PID-N`, and `.old` asides) whose process is gone:
/// what a killed run leaves. Best effort (on Linux, where a live PID can be checked; elsewhere
/// nothing is removed); returns what was removed.
pub fn remove_stale_temps(parent: &Path, name: &str) -> Vec<PathBuf> {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && process_is_gone(pid)) {
            let path = entry.path();
            if remove_path(&path).is_ok() {
                removed.push(path);
            }
        }
    }
    removed
}

/// Whether no process has this id (only known on Linux; elsewhere assumed alive).
fn process_is_gone(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// The parent (`.` for a bare name) and final name of an output path.
fn split(path: &Path) -> Result<(PathBuf, String), WeightsError> {
    let name = path
        .file_name()
        .ok_or_else(|| WeightsError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "output path has no final name"),
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name))
}

/// Creates a fresh `.NAME.tmp-PID-N` in `parent` with `make` (which must fail with
/// `AlreadyExists` on a taken name) and registers it as live.
fn new_temp(parent: &Path, name: &str, make: impl Fn(&Path) -> std::io::Result<()>) -> Result<PathBuf, WeightsError> {
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let candidate = parent.join(format!(".{name}.tmp-{}-{n}", std::process::id()));
        // Registered before it exists, so a signal arriving in between still removes it.
        live().push(candidate.clone());
        match make(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) => {
                forget(&candidate);
                if e.kind() != std::io::ErrorKind::AlreadyExists {
                    return Err(WeightsError::Io {
                        path: candidate,
                        source: e,
                    });
                }
            }
        }
    }
}

fn remove_path(path: &Path) -> std::io::Result<()> {
    let is_dir = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir());
    if is_dir {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

fn sync_file(path: &Path) -> Result<(), WeightsError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(WeightsError::io(path))
}

/// Syncs a directory entry list (where the platform allows opening a directory).
fn sync_dir(dir: &Path) -> Result<(), WeightsError> {
    if cfg!(unix) {
        sync_file(dir)
    } else {
        Ok(())
    }
}

fn sync_parent(path: &Path) -> Result<(), WeightsError> {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => sync_dir(p),
        _ => sync_dir(Path::new(".")),
    }
}

/// Syncs every file under `dir`, then every directory (deepest first), so the rename that
/// follows publishes data that is on disk.
fn sync_tree(dir: &Path) -> Result<(), WeightsError> {
    for entry in std::fs::read_dir(dir).map_err(WeightsError::io(dir))? {
        let path = entry.map_err(WeightsError::io(dir))?.path();
        let meta = std::fs::symlink_metadata(&path).map_err(WeightsError::io(&path))?;
        if meta.is_dir() {
            sync_tree(&path)?;
        } else if meta.is_file() {
            sync_file(&path)?;
        }
    }
    sync_dir(dir)
}

fn exists(path: &Path) -> Result<bool, WeightsError> {
    // symlink_metadata: a dangling symlink at the final path still counts as existing.
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(WeightsError::io(path)(e)),
    }
}
