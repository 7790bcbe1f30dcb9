//! The deployment file decides who may do what, so, as ssh does with its keys,
//! poolsync refuses one that users other than its owner and root could change.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

fn check_one(path: &Path, what: &str, is_dir: bool) -> Result<(), String> {
    let md = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mode = md.mode() & 0o7777;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if md.uid() != 0 && md.uid() != me {
        return Err(format!(
            "refusing to trust {what} {}: it belongs to uid {}, not to you (uid {me}) or root, and it decides who may do what; have root give it to you or to root (chown)",
            path.display(),
            md.uid()
        ));
    }
    // A sticky folder (like /tmp) lets nobody replace another's file.
    let sticky = is_dir && mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(format!(
            "refusing to trust {what} {}: it is writable by its group or others (mode {:04o}) and it decides who may do what; fix it with: chmod go-w {}",
            path.display(),
            mode,
            path.display()
        ));
    }
    Ok(())
}

/// Checks the deployment file and the folder holding it; through a symbolic
/// link, also the folder that really holds the file (whoever can write there
/// can replace it).
pub fn check_trusted(file: &Path) -> Result<(), String> {
    check_one(file, "the deployment file", false)?;
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    check_one(&folder, "the deployment folder", true)?;
    let real = file
        .canonicalize()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    match real.parent() {
        Some(real_folder) if Some(real_folder) != folder.canonicalize().ok().as_deref() => {
            check_one(
                real_folder,
                "the folder the deployment file links into",
                true,
            )
        }
        _ => Ok(()),
    }
}
