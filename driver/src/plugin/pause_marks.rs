//! Which tasks are paused, kept in the plugin's `data_dir` so a pause outlives the plugin process.
//!
//! Nomad keeps a task's handle as StartTask returned it and never asks for it again, so the handle
//! cannot say the task was paused later. When the plugin is killed and the client recovers the
//! task from its handle, the task would start replicating again although the user paused it. A
//! mark file per paused task (`<data_dir>/paused/<task id, escaped>`) closes that gap:
//! SignalTask writes it before the pause takes effect and removes it after a resume,
//! RecoverTask reads it, DestroyTask removes it. Without a `data_dir` there is nowhere to keep
//! it, and a task recovered after a crash runs (logged at start, documented in the README).

use std::io;
use std::path::{Path, PathBuf};

/// The marks under one `data_dir`.
#[derive(Debug, Clone)]
pub struct PauseMarks {
    dir: PathBuf,
}

impl PauseMarks {
    /// The marks kept under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        PauseMarks {
            dir: data_dir.join("paused"),
        }
    }

    fn path(&self, task_id: &str) -> PathBuf {
        self.dir.join(escape(task_id))
    }

    /// Records that the task is paused (`true`) or running (`false`).
    pub fn set(&self, task_id: &str, paused: bool) -> io::Result<()> {
        if paused {
            std::fs::create_dir_all(&self.dir)?;
            std::fs::write(self.path(task_id), task_id)
        } else {
            self.forget(task_id)
        }
    }

    /// Whether the task was left paused. An unreadable folder counts as not paused, and says so.
    pub fn is_paused(&self, task_id: &str) -> bool {
        match std::fs::metadata(self.path(task_id)) {
            Ok(_) => true,
            Err(err) if err.kind() == io::ErrorKind::NotFound => false,
            Err(err) => {
                tracing::warn!(task = %task_id, dir = %self.dir.display(), %err, "cannot read the task's pause mark; recovering it running");
                false
            }
        }
    }

    /// Removes the task's mark, if any.
    pub fn forget(&self, task_id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(task_id)) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

/// A file name for any task id (Nomad's are `<alloc>/<task>/<hex>`): `task-`, then the id with
/// letters, digits, `-` and `.` kept and every other byte as `_XX`; distinct ids give distinct
/// names.
fn escape(task_id: &str) -> String {
    let mut name = String::with_capacity(task_id.len() + 16);
    name.push_str("task-");
    for byte in task_id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.' {
            name.push(char::from(byte));
        } else {
            name.push_str(&format!("_{byte:02x}"));
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn marks_survive_a_new_instance_and_go_away_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let id = "5b2e8c1a-0000-4000-8000-000000000001/Src/0a1b2c3d";
        let marks = PauseMarks::new(dir.path());
        assert!(!marks.is_paused(id));
        marks.set(id, true).unwrap();
        assert!(PauseMarks::new(dir.path()).is_paused(id));
        assert!(!marks.is_paused("5b2e8c1a-0000-4000-8000-000000000001/Dest/0a1b2c3d"));
        marks.set(id, false).unwrap();
        assert!(!marks.is_paused(id));
        marks.forget(id).unwrap();
    }

    #[test]
    fn escaped_names_stay_inside_the_folder() {
        for id in ["..", ".", "a/../b", "/etc/passwd", ""] {
            let name = escape(id);
            assert!(
                !name.contains('/') && name.starts_with("task-"),
                "{id:?} → {name:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn distinct_ids_get_distinct_names(a in ".{0,40}", b in ".{0,40}") {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }
    }
}
