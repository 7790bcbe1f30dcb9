//! Listing a prefix: a walk of its folders, sub-folders in parallel, that reads
//! names with `getdents64` and stats each file once with `statx` (via rustix),
//! yields the entries in the byte order of their full paths without sorting
//! the whole listing, and flags a listing a folder or an item was missing from.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rayon::prelude::*;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, StatxFlags};
use rustix::io::Errno;

use super::Inner;
use super::errors::io_err;
use crate::store::{ChangeToken, Entry, ItemPath, Listing, StoreResult, printable};

impl Inner {
    /// Lists every item below `prefix`; nothing, with a warning, when `prefix`
    /// is not a plain folder.
    pub(super) fn list(&self, prefix: &ItemPath) -> StoreResult<Listing> {
        let abs = self.abs(prefix);
        match fs::symlink_metadata(&abs) {
            Ok(md) if md.is_dir() => {}
            Ok(_) => {
                return Ok(Listing {
                    exists: false,
                    entries: Vec::new(),
                    warnings: vec![format!("'{prefix}' is not a plain folder; nothing listed")],
                    incomplete: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(io_err(&self.desc(), "list", &prefix.to_string(), e)),
        }
        let mut listing = Listing {
            exists: true,
            ..Listing::default()
        };
        let dir = match self.openat2_beneath(prefix, libc::O_RDONLY | libc::O_DIRECTORY) {
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => File::open(&abs),
            opened => opened,
        }
        .map_err(|e| io_err(&self.desc(), "list", &prefix.to_string(), e))?;
        walk(&dir, &abs, b"", &mut listing);
        Ok(listing)
    }

    /// Lists what is at or below each of `paths` under `prefix`: a file, the
    /// walk of a folder, or nothing for a path that is gone (or is not a plain
    /// path: a link or a file stands where a folder was). Each path is looked
    /// at from its parent folder, opened beneath the root without following
    /// links, so nothing else of the prefix is read.
    pub(super) fn list_paths(&self, prefix: &ItemPath, paths: &[ItemPath]) -> Listing {
        let mut listing = Listing {
            exists: true,
            ..Listing::default()
        };
        for path in paths {
            let parent = path.parent();
            let folder = match &parent {
                Some(p) => prefix.join(p),
                None => prefix.clone(),
            };
            let flags = libc::O_RDONLY | libc::O_DIRECTORY;
            let dir = match self.openat2_beneath(&folder, flags) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => File::open(self.abs(&folder)),
                opened => opened,
            };
            let dir = match dir {
                Ok(dir) => dir,
                Err(e) if gone(&e) => continue,
                Err(e) => {
                    listing.warnings.push(format!(
                        "cannot list '{}': {e}",
                        printable(self.abs(&folder).as_os_str().as_bytes())
                    ));
                    listing.incomplete = true;
                    continue;
                }
            };
            let shown = self.abs(&folder);
            let rel = parent.as_ref().map_or(&b""[..], ItemPath::as_bytes);
            let Ok(name) = CString::new(path.leaf()) else {
                continue;
            };
            match read_child(&dir, &shown, rel, &name, FileType::Unknown, &mut listing) {
                Some(Child::File(entry)) => listing.entries.push(entry),
                Some(Child::Folder(name, rel)) => {
                    walk_folder(&dir, &shown, &name, rel.as_bytes(), &mut listing);
                }
                None => {}
            }
        }
        listing
    }
}

/// An error opening a path's folder that means the path is gone as a plain
/// path: missing, or a file or a link where a folder was.
fn gone(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP | libc::EXDEV)
    )
}

/// A `statx` time in nanoseconds since the epoch, saturating: a time past
/// the year 2262 (any user can set one) must not overflow.
fn statx_ns(t: &rustix::fs::StatxTimestamp) -> i64 {
    t.tv_sec
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.tv_nsec))
}

/// Lists the open folder `dir` recursively, sub-folders in parallel, into `out`:
/// the entries in the byte order of their full paths (the order the sync engine
/// merges in), a warning per item skipped, and `incomplete` when a folder or an
/// item could not be read. `rel` is the folder's path below the listed prefix
/// (empty at the top), `shown` its path for warnings.
///
/// Sorting each folder's children by name, with a `/` appended to folder names,
/// gives that order without sorting the whole listing: every path below folder
/// `d` starts with `d/`, and no file name contains a `/`.
///
/// Per file this costs one `statx` relative to the open folder and one
/// allocation (its path): names are read in place from the `getdents64`
/// buffer, and sub-folders are opened relative to their parent without
/// following links.
fn walk(dir: &File, shown: &Path, rel: &[u8], out: &mut Listing) {
    let mut children = read_children(dir, shown, rel, out);
    // Every child's path is `rel/` (nothing at the top) and then its name.
    let skip = if rel.is_empty() { 0 } else { rel.len() + 1 };
    children.sort_unstable_by(|a, b| Child::order(a, b, skip));
    walk_children(dir, shown, children, out);
}

/// The files and folders in the open folder `dir`, in the order the kernel
/// lists them; a warning in `out` for each one skipped.
fn read_children(dir: &File, shown: &Path, rel: &[u8], out: &mut Listing) -> Vec<Child> {
    let mut children: Vec<Child> = Vec::new();
    let mut buf = Vec::with_capacity(32 * 1024);
    let mut items = RawDir::new(dir, buf.spare_capacity_mut());
    while let Some(item) = items.next() {
        let item = match item {
            Ok(i) => i,
            Err(e) => {
                out.warnings.push(format!(
                    "cannot list '{}': {e}",
                    printable(shown.as_os_str().as_bytes())
                ));
                out.incomplete = true;
                break;
            }
        };
        let name = item.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        if let Some(child) = read_child(dir, shown, rel, name, item.file_type(), out) {
            children.push(child);
        }
    }
    children
}

/// The child `name` of the open folder `dir`, listed with the type `kind`:
/// a file (stat'ed) or a folder to walk. `None`, with a warning in `out`
/// unless it was deleted since it was listed, for anything else.
fn read_child(
    dir: &File,
    shown: &Path,
    rel: &[u8],
    name: &CStr,
    mut kind: FileType,
    out: &mut Listing,
) -> Option<Child> {
    let show = |name: &[u8]| printable(shown.join(OsStr::from_bytes(name)).as_os_str().as_bytes());
    let bytes = name.to_bytes();
    let mut stat = None;
    if matches!(kind, FileType::RegularFile | FileType::Unknown) {
        match rustix::fs::statx(
            dir,
            name,
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::TYPE
                | StatxFlags::SIZE
                | StatxFlags::MTIME
                | StatxFlags::CTIME
                | StatxFlags::INO,
        ) {
            Ok(st) => {
                // The entry may have changed since it was listed.
                kind = FileType::from_raw_mode(u32::from(st.stx_mode));
                stat = Some(st);
            }
            // Deleted since it was listed.
            Err(Errno::NOENT) => return None,
            Err(e) => {
                out.warnings
                    .push(format!("cannot read '{}': {e}", show(bytes)));
                out.incomplete = true;
                return None;
            }
        }
    }
    let child = match (kind, stat) {
        // The staging area of a mount below the store (see staging.rs): the
        // store's own, never an item.
        (FileType::Directory, _) if bytes == super::staging::MOUNT_STAGING.as_bytes() => {
            return None;
        }
        (FileType::Directory, _) => ItemPath::child_of(rel, bytes)
            .map(|path| Child::Folder(name.to_owned(), path))
            .map_err(|m| format!("skipped a folder: {m}")),
        (FileType::RegularFile, Some(st)) => ItemPath::child_of(rel, bytes)
            .map(|path| {
                Child::File(Entry {
                    path,
                    size: st.stx_size,
                    mtime_ns: statx_ns(&st.stx_mtime),
                    token: ChangeToken::Inode {
                        ino: st.stx_ino,
                        ctime_ns: statx_ns(&st.stx_ctime),
                    },
                })
            })
            .map_err(|m| format!("skipped an item: {m}")),
        (FileType::Symlink, _) => Err(format!(
            "skipped '{}': symbolic links are not followed or copied",
            show(bytes)
        )),
        _ => Err(format!("skipped '{}': not a regular file", show(bytes))),
    };
    child.map_err(|warning| out.warnings.push(warning)).ok()
}

/// Walks the sub-folders among the sorted `children` of the open folder `dir`
/// (in parallel when there are several), then splices their listings in
/// between the files, in order.
fn walk_children(dir: &File, shown: &Path, children: Vec<Child>, out: &mut Listing) {
    let folders = children
        .iter()
        .filter(|c| matches!(c, Child::Folder(..)))
        .count();
    let mut walked: std::vec::IntoIter<Listing> = if folders > 1 {
        children
            .par_iter()
            .filter_map(|c| match c {
                Child::Folder(name, rel) => Some((name, rel)),
                Child::File(_) => None,
            })
            .map(|(name, rel)| {
                let mut listing = Listing::default();
                walk_folder(dir, shown, name, rel.as_bytes(), &mut listing);
                listing
            })
            .collect::<Vec<_>>()
            .into_iter()
    } else {
        Vec::new().into_iter()
    };
    for child in children {
        match child {
            Child::File(entry) => out.entries.push(entry),
            Child::Folder(name, rel) => match walked.next() {
                Some(listing) => {
                    out.entries.extend(listing.entries);
                    out.warnings.extend(listing.warnings);
                    out.incomplete |= listing.incomplete;
                }
                None => walk_folder(dir, shown, &name, rel.as_bytes(), out),
            },
        }
    }
}

/// Opens the sub-folder `name` of the open folder `dir`, without following a
/// link, and walks it into `out`.
fn walk_folder(dir: &File, shown: &Path, name: &CStr, rel: &[u8], out: &mut Listing) {
    let shown = shown.join(OsStr::from_bytes(name.to_bytes()));
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => walk(&File::from(fd), &shown, rel, out),
        // Deleted since it was listed.
        Err(Errno::NOENT) => {}
        Err(e) => {
            out.warnings.push(format!(
                "cannot list '{}': {e}",
                printable(shown.as_os_str().as_bytes())
            ));
            out.incomplete = true;
        }
    }
}

/// One child of a folder being walked: a file's entry, or a folder to walk
/// (its name and its path below the listed prefix).
enum Child {
    File(Entry),
    Folder(CString, ItemPath),
}

impl Child {
    /// Orders children of one folder by name, a folder's name taken as
    /// followed by `/`. `skip` is the length of their common `rel/` prefix.
    fn order(a: &Child, b: &Child, skip: usize) -> std::cmp::Ordering {
        let (a, a_folder) = a.name(skip);
        let (b, b_folder) = b.name(skip);
        let n = a.len().min(b.len());
        a[..n].cmp(&b[..n]).then_with(|| {
            // One name starts with the other: compare the byte after it, where
            // a folder's name has its `/` and a file's name has nothing.
            let next = |s: &[u8], folder: bool| s.get(n).copied().or(folder.then_some(b'/'));
            next(a, a_folder).cmp(&next(b, b_folder))
        })
    }

    fn name(&self, skip: usize) -> (&[u8], bool) {
        match self {
            Child::File(entry) => (entry.path.as_bytes().get(skip..).unwrap_or_default(), false),
            Child::Folder(_, rel) => (rel.as_bytes().get(skip..).unwrap_or_default(), true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_lists_in_full_path_byte_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        // `a.b` sorts before `a/x` ('.' < '/') though the folder `a` sorts
        // before the name `a.b`; `a0` sorts after both ('0' > '/').
        // Below `c`, the file `d` is a prefix of the file `d.x` and of the
        // folders `dd` and `de`, which sort after `d.x` ('.' < 'd').
        for name in [
            "a/x", "a/y/z", "a/y.1", "a.b", "a0", "b", "#1", "a/y/z2", "c/de/f", "c/d", "c/d.x",
            "c/dd/e/f",
        ] {
            let path = root.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, name).unwrap();
        }
        let mut listing = Listing::default();
        walk(&File::open(root).unwrap(), root, b"", &mut listing);
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert!(!listing.incomplete);
        let listed: Vec<ItemPath> = listing.entries.into_iter().map(|e| e.path).collect();
        let mut sorted = listed.clone();
        sorted.sort();
        assert_eq!(listed, sorted);
        assert_eq!(listed.len(), 12);
    }

    #[test]
    fn a_time_past_2262_is_listed_without_overflow() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("far");
        fs::write(&path, "x").unwrap();
        let year_2300 = std::time::UNIX_EPOCH + std::time::Duration::from_hours(2_892_720);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(year_2300)
            .unwrap();
        let mut listing = Listing::default();
        walk(
            &File::open(dir.path()).unwrap(),
            dir.path(),
            b"",
            &mut listing,
        );
        assert!(listing.warnings.is_empty(), "{:?}", listing.warnings);
        assert_eq!(listing.entries.len(), 1);
        assert_eq!(listing.entries[0].mtime_ns, i64::MAX);
    }
}
