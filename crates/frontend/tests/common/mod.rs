//! Finding BuildKit's reference vectors for the integration tests.

use std::path::{Path, PathBuf};

/// The vectors directory: `$KILN_VECTORS_DIR`, or `../shared/vectors` beside the
/// workspace root. `None` (after saying so on stderr) when it does not exist, so the
/// tests skip; a directory that exists but cannot be read fails the test later.
pub fn vectors_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("KILN_VECTORS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors"),
    };
    if dir.exists() {
        Some(dir)
    } else {
        eprintln!("vectors not found at {}; skipping", dir.display());
        None
    }
}

/// Reads a vector file as text, failing the test when it cannot.
#[allow(dead_code)]
pub fn read_text(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => panic!("cannot read vector file {}: {err}", path.display()),
    }
}
