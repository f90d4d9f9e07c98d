//! Plugin mode: `dtle` started by a Nomad client (the magic cookie is in its environment).
//!
//! Logs go to stderr only, one JSON object per line in hclog's shape (`@level`, `@message`,
//! `@timestamp` with exactly six fractional digits, then the fields): go-plugin's client reads
//! that shape and logs each line at its own level in the Nomad client's log, where a plain text
//! line (or a timestamp in another layout) would be logged verbatim at debug level and hidden. The protocol itself lives in `driver::plugin`. After the client restarts and
//! reattaches, stderr may be a dead pipe: a log line that cannot be written is dropped.
//! (tracing-subscriber would otherwise report the failed write with `eprintln!`, which panics on
//! that very pipe.)

use serde_json::{Map, Value};
use std::fmt;
use std::process::ExitCode;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Sets up logging and serves Nomad's plugin protocol until the client shuts the plugin down.
/// `DTLE_LOG` sets the log filter; without it, the plugin config's `log_level` does (info until
/// SetConfig).
pub fn run() -> ExitCode {
    let from_env = tracing_subscriber::EnvFilter::try_from_env("DTLE_LOG").ok();
    let pinned = from_env.is_some();
    let (filter, reload) = tracing_subscriber::reload::Layer::new(
        from_env.unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info")),
    );
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .log_internal_errors(false)
                .event_format(HclogJson),
        )
        .init();
    let set_log_level = move |level: &str| {
        if pinned {
            tracing::info!(
                level,
                "log_level in the plugin config ignored: DTLE_LOG is set"
            );
        } else if let Err(err) = reload.reload(tracing_subscriber::EnvFilter::new(level)) {
            tracing::warn!(level, %err, "cannot apply log_level");
        }
    };
    driver::plugin::run(driver::plugin::Hooks {
        set_log_level: Some(std::sync::Arc::new(set_log_level)),
    })
}

/// hclog's JSON line format, which go-plugin's client parses from a plugin's stderr.
pub struct HclogJson;

impl<S, N> FormatEvent<S, N> for HclogJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "@level".into(),
            hclog_level(event.metadata().level()).into(),
        );
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("@timestamp".into(), timestamp.into());
        line.insert("@module".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let fields = extensions
                    .get::<FormattedFields<N>>()
                    .map(|f| f.fields.as_str())
                    .unwrap_or_default();
                line.insert(span.name().into(), fields.into());
            }
        }
        let mut visitor = Fields {
            message: String::new(),
            fields: line,
        };
        event.record(&mut visitor);
        let Fields {
            message,
            fields: mut line,
        } = visitor;
        line.insert("@message".into(), message.into());
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// An event's message and fields, as JSON values.
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_hclog_json_with_level_message_fields_and_spans() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(HclogJson)
            .with_max_level(Level::DEBUG)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("task", job = "j1", task = "Src");
            let _entered = span.enter();
            tracing::warn!(rows = 3_u64, paused = true, "a \"quoted\" warning");
            tracing::debug!("plain");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["@level"], "warn");
        assert_eq!(lines[0]["@message"], "a \"quoted\" warning");
        assert_eq!(lines[0]["rows"], 3);
        assert_eq!(lines[0]["paused"], true);
        assert_eq!(lines[0]["task"], "job=\"j1\" task=\"Src\"");
        assert!(lines[0]["@timestamp"]
            .as_str()
            .is_some_and(|t| t.contains('T')));
        assert_eq!(lines[1]["@level"], "debug");
        assert_eq!(lines[1]["@message"], "plain");
    }
}
