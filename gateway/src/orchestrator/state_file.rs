//! Writing a file of the state folder: whole or not at all, readable by the agent's user only
//! (job files hold passwords).

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file beside it, synced, then renamed over it:
/// a crash leaves the old file or the new one, never half of one. Mode 0600 on Unix.
///
/// # Errors
/// The I/O error of the first step that failed.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
