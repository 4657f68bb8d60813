//! Writing files so that readers see either the old content or the whole new one, never a part.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `contents` to a temporary file beside `path`, syncs it and renames it over `path`.
/// A crash or error leaves any earlier `path` untouched and removes the temporary file.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_path(path);
    let written = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    written
}

fn temporary_path(path: &Path) -> PathBuf {
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".to_owned());
    path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let temporary = tempfile::tempdir().unwrap();
        let directory = temporary.path();
        let path = directory.join("out.json");
        write_atomically(&path, b"first").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let leftovers = std::fs::read_dir(directory).unwrap().count();
        assert_eq!(leftovers, 1);
        let missing_directory = directory.join("missing").join("out.json");
        assert!(write_atomically(&missing_directory, b"x").is_err());
    }
}
