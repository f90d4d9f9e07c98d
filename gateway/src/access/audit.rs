//! The audit log: one JSON line per call that may change state, in `<state_dir>/audit.log`
//! (created readable by its owner only, appended to, never rewritten), and the same line as a
//! tracing event with the target `audit`.
//!
//! A line says who (the token's name, `anonymous` on an open API), when, the method, the path,
//! the job (from the path, or the ID in the answer) and the status. Never a body, a header or a
//! query value: secrets travel there.

use serde::Serialize;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// One audited call.
#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub who: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub job: Option<&'a str>,
    pub status: u16,
}

/// Where audit lines go.
#[derive(Debug, Default)]
pub struct AuditLog {
    file: Option<Mutex<std::fs::File>>,
}

impl AuditLog {
    /// Tracing only (the agent in front of Nomad without a state folder, tests).
    pub fn to_tracing() -> Self {
        Self::default()
    }

    /// Appends to `path` (created with mode 0600).
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(Self {
            file: Some(Mutex::new(file)),
        })
    }

    /// Records one call.
    pub fn record(&self, entry: &Entry<'_>) {
        tracing::info!(
            target: "audit",
            who = entry.who,
            method = entry.method,
            path = entry.path,
            job = entry.job.unwrap_or("-"),
            status = entry.status,
            "API call"
        );
        let Some(file) = &self.file else { return };
        #[derive(Serialize)]
        struct Line<'a> {
            time: String,
            #[serde(flatten)]
            entry: &'a Entry<'a>,
        }
        let line = Line {
            time: crate::orchestrator::rfc3339(crate::orchestrator::now_ns()),
            entry,
        };
        let Ok(mut text) = serde_json::to_vec(&line) else {
            return;
        };
        text.push(b'\n');
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = file.write_all(&text) {
            tracing::error!(%err, "the audit log cannot be written");
        }
    }
}
