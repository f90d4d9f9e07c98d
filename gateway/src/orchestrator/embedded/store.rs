//! The embedded orchestrator's state folder: one JSON file per job (its record and allocations),
//! written atomically (temporary file, fsync, rename) and readable only by its owner. The job's
//! passwords are sealed before the file is written ([`crate::secrets`]) and opened as it is read;
//! one sealed under a previous key is sealed again under the current one. An agent that
//! restarts reads the jobs back and restarts what ran; a job whose passwords it cannot open
//! (a state folder copied without its key) is kept, stopped, with the reason as its status.

use super::super::{Allocation, JobRecord, OrchestratorError};
use crate::secrets::KeyRing;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What is persisted of one job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredJob {
    /// The job.
    pub record: JobRecord,
    /// Its allocations.
    pub allocations: Vec<Allocation>,
}

/// The folder of job files.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// Saves of the same job from two tasks' supervisors must not share the temporary file.
    writing: std::sync::Mutex<()>,
    /// Seals and opens the jobs' passwords.
    keys: Arc<KeyRing>,
}

impl Store {
    /// Opens (creating) `<state_dir>/jobs`, sealing with `keys`.
    ///
    /// # Errors
    /// When the folder cannot be created.
    pub fn open(state_dir: &Path, keys: Arc<KeyRing>) -> Result<Self, OrchestratorError> {
        let dir = state_dir.join("jobs");
        std::fs::create_dir_all(&dir).map_err(|e| {
            OrchestratorError::Internal(format!("creating the state folder {}: {e}", dir.display()))
        })?;
        Ok(Self {
            dir,
            writing: std::sync::Mutex::new(()),
            keys,
        })
    }

    /// The keys that seal the jobs' passwords.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    fn path(&self, id: &str) -> PathBuf {
        // Job IDs are validated to [A-Za-z0-9_-], so they are safe file names.
        self.dir.join(format!("{id}.json"))
    }

    /// Writes one job.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, job: &StoredJob) -> Result<(), OrchestratorError> {
        let path = self.path(&job.record.spec.id);
        let mut sealed = job.clone();
        self.keys.seal_job(&mut sealed.record.spec);
        let text = serde_json::to_vec_pretty(&sealed)
            .map_err(|e| OrchestratorError::Internal(format!("encoding job state: {e}")))?;
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        crate::orchestrator::state_file::write_private(&path, &text)
            .map_err(|e| OrchestratorError::Internal(format!("writing {}: {e}", path.display())))
    }

    /// Forgets one job.
    ///
    /// # Errors
    /// When the file exists but cannot be removed.
    pub fn remove(&self, id: &str) -> Result<(), OrchestratorError> {
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(OrchestratorError::Internal(format!(
                "removing job {id}: {e}"
            ))),
        }
    }

    /// Writes the index of the last change (a purge leaves no job file to carry it), so that
    /// indexes never go back across restarts.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_index(&self, index: u64) -> Result<(), OrchestratorError> {
        let path = self.dir.with_file_name("index");
        let tmp = path.with_extension("tmp");
        let write = || -> std::io::Result<()> {
            std::fs::write(&tmp, index.to_string())?;
            std::fs::rename(&tmp, &path)
        };
        let _one_at_a_time = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        write().map_err(|e| OrchestratorError::Internal(format!("writing {}: {e}", path.display())))
    }

    /// The index [`Self::save_index`] wrote, 0 if none.
    pub fn load_index(&self) -> u64 {
        std::fs::read_to_string(self.dir.with_file_name("index"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Every stored job; unreadable files are reported and skipped.
    pub fn load(&self) -> Vec<StoredJob> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut jobs = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    serde_json::from_slice::<StoredJob>(&bytes).map_err(|e| e.to_string())
                }) {
                Ok(job) => jobs.push(self.opened(job)),
                Err(err) => {
                    tracing::error!(file = %path.display(), %err, "skipping an unreadable job file")
                }
            }
        }
        jobs
    }

    /// `job` with its passwords opened; sealed again under the current key if a previous one
    /// sealed them; stopped, with the reason, if none of the keys can open them.
    fn opened(&self, mut job: StoredJob) -> StoredJob {
        let id = job.record.spec.id.clone();
        let mut clear = job.record.spec.clone();
        match self.keys.open_job(&mut clear) {
            Ok(stale) => {
                job.record.spec = clear;
                if stale {
                    match self.save(&job) {
                        Ok(()) => {
                            tracing::info!(job = %id, "job passwords sealed again under the current key")
                        }
                        Err(err) => {
                            tracing::error!(job = %id, %err, "job passwords not sealed again")
                        }
                    }
                }
            }
            Err(err) => {
                tracing::error!(job = %id, %err, "the job cannot be started: its passwords cannot be opened");
                job.record.status = "dead".into();
                job.record.status_description =
                    format!("cannot be started: the job's passwords were {err}");
                let message = format!("the job's passwords were {err}");
                for alloc in &mut job.allocations {
                    super::supervisor::refuse_start(alloc, &message);
                }
            }
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orchestrator::JobRecord;

    fn job(id: &str) -> StoredJob {
        let text = format!(
            r#"{{"Name": "{id}", "Tasks": [
              {{"Type": "Src", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "secret"}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u"}}}}}}]}}"#
        );
        StoredJob {
            record: JobRecord::new(
                jobs::parse_job(&text).expect("valid").spec,
                jobs::Posted::default(),
                1,
            ),
            allocations: Vec::new(),
        }
    }

    #[test]
    fn concurrent_saves_leave_a_readable_private_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = Arc::new(KeyRing::from_keys(&[3; 32], &[]));
        let store = std::sync::Arc::new(Store::open(dir.path(), keys).expect("store"));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    let mut j = job("same");
                    j.record.modify_index = i;
                    for _ in 0..50 {
                        store.save(&j).expect("save");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let loaded = store.load();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].record.spec.src.connection.password.expose(),
            "secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("jobs/same.json"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        store.remove("same").expect("remove");
        assert!(store.load().is_empty());
        assert_eq!(store.load_index(), 0);
        store.save_index(42).expect("index");
        assert_eq!(store.load_index(), 42);
    }
}
