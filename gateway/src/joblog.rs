//! One log file per job: every log line written inside a job's spans (its tasks, the
//! orchestrator's supervision of them) also goes to `<dir>/job-<job id>.log`, which SeaTunnel's
//! `/logs` and `/log` endpoints list and serve.
//!
//! A line belongs to a job when the event or one of its spans carries a `job_id` field (the
//! embedded orchestrator's `alloc` span and the driver's `task` span do). Lines are plain text,
//! `<RFC 3339 time> <LEVEL> <target>: <message> <fields> [<span fields>]`, written as they happen
//! (no buffering, so a crash loses nothing already logged). A file that passes [`MAX_FILE_BYTES`]
//! is moved to `job-<id>.log.1` (replacing an older one) and started afresh, so a job's logs take
//! at most twice that. Writing never fails the job: an unwritable folder is reported once on
//! stderr's log and then ignored. Passwords never reach the logs in the first place (the job
//! model prints them as `*`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// A job's log file grows to this, then starts afresh (the previous one kept as `.1`).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The field that ties a span or an event to a job.
pub const JOB_ID_FIELD: &str = "job_id";

/// The tracing layer that writes the per-job files.
pub struct JobLogLayer {
    dir: PathBuf,
    files: Mutex<HashMap<String, (File, u64)>>,
    failed: AtomicBool,
}

impl JobLogLayer {
    /// Writes under `dir` (created when the first line comes).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JobLogLayer {
            dir: dir.into(),
            files: Mutex::default(),
            failed: AtomicBool::new(false),
        }
    }

    fn append(&self, job_id: &str, line: &str) -> std::io::Result<()> {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        let name = file_name(job_id);
        if !files.contains_key(&name) {
            std::fs::create_dir_all(&self.dir)?;
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(&name))?;
            let size = file.metadata()?.len();
            files.insert(name.clone(), (file, size));
        }
        let Some((file, size)) = files.get_mut(&name) else {
            return Ok(());
        };
        if *size + line.len() as u64 > MAX_FILE_BYTES && *size > 0 {
            let path = self.dir.join(&name);
            std::fs::rename(&path, self.dir.join(format!("{name}.1")))?;
            *file = OpenOptions::new().create(true).append(true).open(&path)?;
            *size = 0;
        }
        file.write_all(line.as_bytes())?;
        *size += line.len() as u64;
        Ok(())
    }
}

/// The file of job `job_id`: `job-<id>.log`, any character outside letters, digits, `-`, `_`
/// and `.` written as `_`.
pub fn file_name(job_id: &str) -> String {
    let id: String = job_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("job-{id}.log")
}

/// A span's job and its fields as text, kept in the span's extensions.
#[derive(Default)]
struct SpanFields {
    job_id: Option<String>,
    text: String,
}

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let value = format!("{value:?}");
        self.record_text(field, value);
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_text(field, value.to_owned());
    }
}

impl SpanFields {
    fn record_text(&mut self, field: &Field, value: String) {
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let _ = write!(self.text, "{}={value}", field.name());
        if field.name() == JOB_ID_FIELD {
            self.job_id = Some(value);
        }
    }
}

/// An event's message apart from its other fields.
#[derive(Default)]
struct EventFields {
    message: String,
    rest: SpanFields,
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.rest.record_debug(field, value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.rest.record_str(field, value);
        }
    }
}

impl<S> Layer<S> for JobLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if let Some(fields) = span.extensions_mut().get_mut::<SpanFields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut job_id = fields.rest.job_id.clone();
        let mut spans = Vec::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(span_fields) = extensions.get::<SpanFields>() {
                    if job_id.is_none() {
                        job_id.clone_from(&span_fields.job_id);
                    }
                    spans.push(format!("{}{{{}}}", span.name(), span_fields.text));
                }
            }
        }
        let Some(job_id) = job_id else {
            return;
        };
        let meta = event.metadata();
        let mut line = format!(
            "{} {:>5} {}: {}",
            humantime_now(),
            meta.level(),
            meta.target(),
            fields.message
        );
        if !fields.rest.text.is_empty() {
            let _ = write!(line, " {}", fields.rest.text);
        }
        if !spans.is_empty() {
            let _ = write!(line, " [{}]", spans.join(":"));
        }
        line.push('\n');
        if let Err(err) = self.append(&job_id, &line) {
            if !self.failed.swap(true, Ordering::Relaxed) {
                // Said once, on the process's own log (not a job's, which is what failed).
                let _ = writeln!(
                    std::io::stderr(),
                    "dtle: cannot write job logs under {}: {err}; they are not kept",
                    self.dir.display()
                );
            }
        }
    }
}

/// Now, RFC 3339 in UTC with microseconds.
fn humantime_now() -> String {
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
    let mut text = String::new();
    let _ = SystemTime.format_time(&mut Writer::new(&mut text));
    text
}

/// A job log file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// `job-<id>.log` (or `.log.1`).
    pub name: String,
    /// Bytes.
    pub size: u64,
}

/// The job log files under `dir`, by name; those of one job when `job_id` is given. A missing
/// folder has none.
pub fn list(dir: &Path, job_id: Option<&str>) -> Vec<LogFile> {
    let prefix = job_id.map(file_name);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<LogFile> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let ours = name.starts_with("job-")
                && (name.ends_with(".log") || name.ends_with(".log.1"))
                && prefix
                    .as_ref()
                    .is_none_or(|p| name == *p || name == format!("{p}.1"));
            let size = entry.metadata().ok()?.len();
            ours.then_some(LogFile { name, size })
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    files
}

/// The text of the log file `name` under `dir`; `None` when there is no such job log (names
/// that are not a job log file's, such as `../x`, never are).
pub fn read(dir: &Path, name: &str) -> Option<String> {
    let valid = name.starts_with("job-")
        && (name.ends_with(".log") || name.ends_with(".log.1"))
        && !name.contains(['/', '\\'])
        && !name.contains("..");
    if !valid {
        return None;
    }
    let bytes = std::fs::read(dir.join(name)).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt as _;

    #[test]
    fn lines_of_a_job_go_to_its_file_others_nowhere() {
        let dir = tempfile::tempdir().unwrap();
        let subscriber = tracing_subscriber::registry().with(JobLogLayer::new(dir.path()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not a job's");
            let alloc = tracing::info_span!("alloc", job_id = "orders/1", task = "Src");
            let _a = alloc.enter();
            let task = tracing::info_span!("task", job = "orders");
            let _t = task.enter();
            tracing::warn!(rows = 3, "lag is growing");
            tracing::info!(job_id = "other", "an event names its own job");
        });
        let files = list(dir.path(), None);
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["job-orders_1.log", "job-other.log"]);
        let text = read(dir.path(), "job-orders_1.log").expect("the job's log");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.contains(" WARN "), "{text}");
        assert!(text.contains("lag is growing rows=3"), "{text}");
        assert!(
            text.contains("[alloc{job_id=orders/1 task=Src}:task{job=orders}]"),
            "{text}"
        );
        assert_eq!(list(dir.path(), Some("other")).len(), 1);
        assert!(list(dir.path(), Some("missing")).is_empty());
    }

    #[test]
    fn only_job_log_names_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.txt"), "no").unwrap();
        for name in ["secret.txt", "../secret.txt", "job-../x.log", "job-x.log"] {
            assert_eq!(read(dir.path(), name), None, "{name}");
        }
    }

    #[test]
    fn a_full_file_starts_afresh_keeping_one_previous() {
        let dir = tempfile::tempdir().unwrap();
        let layer = JobLogLayer::new(dir.path());
        let line = "x".repeat(1024) + "\n";
        for _ in 0..(MAX_FILE_BYTES / 1024 + 10) {
            layer.append("big", &line).unwrap();
        }
        let files = list(dir.path(), Some("big"));
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files.iter().all(|f| f.size <= MAX_FILE_BYTES));
    }
}
