//! Files this machine's Twofold keeps (known_hosts, ...) replaced whole: readers, and a crash at
//! any moment, see the old content or the new one, never half of either.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, IoContext, Result};

/// Replace `path` with `data` unless it holds exactly that already; says whether it wrote. An
/// unchanged file keeps its time stamps, and nothing is written to the disk.
pub fn replace_if_changed(path: &Path, data: &[u8], mode: u32) -> Result<bool> {
    match std::fs::read(path) {
        Ok(old) if old == data => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    }
    write_atomic(path, data, mode)?;
    Ok(true)
}

/// Write `data` to a new file beside `path`, flush it to the disk, rename it over `path` and
/// flush the folder. The file keeps the permissions it had; a new one gets `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o7777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => mode,
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let writing = || format!("writing {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .ctx(writing)?;
    // The temporary file is removed again if anything below fails.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| tmp.write_all(data))
        .and_then(|()| tmp.as_file().sync_all())
        .ctx(writing)?;
    tmp.persist(path)
        .map_err(|e| Error::io(format!("replacing {}", path.display()), e.error))?;
    // The rename itself reaches the disk only with the folder.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("flushing {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_only_changes_and_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        assert!(replace_if_changed(&path, b"a\n", 0o644).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"a\n");
        let first = std::fs::metadata(&path).unwrap();
        assert_eq!(first.mode() & 0o7777, 0o644);

        // The same content: not written (same inode, same change time).
        assert!(!replace_if_changed(&path, b"a\n", 0o644).unwrap());
        let again = std::fs::metadata(&path).unwrap();
        assert_eq!(
            (again.ino(), again.ctime_nsec()),
            (first.ino(), first.ctime_nsec())
        );

        // New content: a new file in its place, with the permissions the old one had.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(replace_if_changed(&path, b"b\n", 0o644).unwrap());
        let changed = std::fs::metadata(&path).unwrap();
        assert_ne!(changed.ino(), first.ino());
        assert_eq!(changed.mode() & 0o7777, 0o600);
        assert_eq!(std::fs::read(&path).unwrap(), b"b\n");
        assert_eq!(names(dir.path()), ["known_hosts"], "no temporary file left");
    }

    #[test]
    fn a_failed_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomic(&path, b"old", 0o644).unwrap();
        // A folder where the file should go: the rename fails, the old content stays.
        let blocked = dir.path().join("sub");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), b"").unwrap();
        let err = write_atomic(&blocked, b"new", 0o644).unwrap_err();
        assert!(err.to_string().contains("replacing"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["f", "sub"], "no temporary file left");
    }

    /// A reader that reads while the file is replaced again and again sees one whole version or
    /// the other, never an empty or half-written file.
    #[test]
    fn readers_never_see_half_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let a = vec![b'a'; 256 * 1024];
        let b = vec![b'b'; 128 * 1024];
        write_atomic(&path, &a, 0o644).unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0u32;
                while !done.load(std::sync::atomic::Ordering::Relaxed) && reads < 1_000_000 {
                    let got = std::fs::read(&path).unwrap();
                    assert!(got == a || got == b, "a read saw {} bytes", got.len());
                    reads += 1;
                }
                reads
            });
            for i in 0..200 {
                write_atomic(&path, if i % 2 == 0 { &b } else { &a }, 0o644).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(reader.join().unwrap() > 0);
        });
    }
}
