//! Plugin mode: `dtle` started by a Nomad client (the magic cookie is in its environment).
//!
//! Logs go to stderr only, one hclog JSON object per line (see [`HclogJson`]): go-plugin's client
//! reads each such line and logs it in the Nomad client's log at the line's own level; a line
//! that is not hclog JSON would be logged at DEBUG, out of sight at the client's default level,
//! warnings and errors included. The protocol itself lives in `driver::plugin`. After the client
//! restarts and reattaches, stderr may be a dead pipe: a log line that cannot be written is
//! dropped. (tracing-subscriber would otherwise report the failed write with `eprintln!`, which
//! panics on that very pipe.)

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
        api_routes: Some(std::sync::Arc::new(dtle_api_in_front_of_nomad)),
    })
}

/// The dtle 2.x API the plugin serves at `api_addr` (as dtle's plugin did), over the Nomad agent
/// at `nomad_addr` (dtle's default 127.0.0.1:4646). The ACL token is the plugin's `NOMAD_TOKEN`
/// (the Nomad client's environment), never a config value that Nomad would show.
fn dtle_api_in_front_of_nomad(
    config: &driver::plugin::config::PluginConfig,
) -> Result<driver::plugin::api::MoreRoutes, String> {
    use gateway::orchestrator::nomad::client::ClientConfig;
    use gateway::orchestrator::nomad::{NomadConfig, NomadOrchestrator};
    use warp::Filter as _;

    let address = config
        .nomad_addr
        .clone()
        .unwrap_or_else(|| driver::plugin::config::DEFAULT_NOMAD_ADDR.to_owned());
    let address = if address.contains("://") {
        address
    } else {
        format!("http://{address}")
    };
    let token = std::env::var("NOMAD_TOKEN").ok().filter(|t| !t.is_empty());
    let orchestrator = NomadOrchestrator::new(NomadConfig {
        client: ClientConfig {
            address,
            region: None,
            namespace: None,
            token,
            timeout: std::time::Duration::from_secs(30),
        },
        stop_timeout: std::time::Duration::from_secs(60),
    })
    .map_err(|e| format!("`nomad_addr`: {e}"))?;
    let orchestrator = match std::env::var("DTLE_SECRET_KEY")
        .ok()
        .filter(|k| !k.is_empty())
    {
        Some(key) => {
            let key =
                gateway::secrets::parse_key(&key, "DTLE_SECRET_KEY").map_err(|e| e.to_string())?;
            orchestrator.with_keys(std::sync::Arc::new(gateway::secrets::KeyRing::from_keys(
                &key,
                &[],
            )))
        }
        None => orchestrator,
    };
    // The same tokens as `dtle agent`, from the Nomad client's environment.
    let env = |variable: &str| std::env::var(variable).ok();
    let access = gateway::access::AccessPolicy::open()
        .with_admin_and_read(
            env("DTLE_ADMIN_TOKEN").as_deref(),
            env("DTLE_READ_TOKEN").as_deref(),
        )
        .map_err(|e| format!("DTLE_ADMIN_TOKEN/DTLE_READ_TOKEN: {e}"))?;
    if !access.is_enforced() {
        tracing::warn!(
            "the dtle API at api_addr has no token: set DTLE_ADMIN_TOKEN (and DTLE_READ_TOKEN) in \
             the Nomad client's environment, or keep api_addr on loopback"
        );
    }
    let shared: gateway::api::handlers::Shared = std::sync::Arc::new(orchestrator);
    let routes = gateway::api::routes::routes(shared).boxed();
    Ok(gateway::access::guarded(
        std::sync::Arc::new(access),
        std::sync::Arc::new(gateway::access::AuditLog::to_tracing()),
        routes,
    ))
}

/// A log event as the JSON line a Go plugin's hclog logger writes and go-plugin's client parses:
/// `@level` (trace, debug, info, warn, error), `@message`, `@timestamp` (RFC 3339 with exactly
/// six fraction digits, UTC: the only layout the client accepts), then the event's fields, its
/// `target`, and its spans as `span` (`task{job=x task=Src}`, outermost first, `:`-separated).
pub struct HclogJson;

fn hclog_level(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// The client decodes JSON numbers as float64: an integer beyond 2^53 (an epoch in nanoseconds,
/// a GTID number) would lose digits there, so it goes as its decimal text instead.
fn exact_in_go(magnitude: u64, number: Value) -> Value {
    if magnitude > 1 << 53 {
        Value::String(number.to_string())
    } else {
        number
    }
}

/// An event's fields: the message apart, the others as JSON values.
#[derive(Default)]
struct JsonFields {
    message: Option<String>,
    others: Map<String, Value>,
}

impl JsonFields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(text) => text,
                other => other.to_string(),
            });
        } else {
            self.others.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, exact_in_go(value.unsigned_abs(), Value::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, exact_in_go(value, Value::from(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // NaN and infinities have no JSON number: their text instead.
        let number = serde_json::Number::from_f64(value).map(Value::Number);
        self.put(
            field,
            number.unwrap_or_else(|| Value::String(value.to_string())),
        );
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

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
        let meta = event.metadata();
        let mut fields = JsonFields::default();
        event.record(&mut fields);

        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        let mut line = Map::new();
        line.insert("@level".into(), hclog_level(meta.level()).into());
        line.insert("@message".into(), fields.message.unwrap_or_default().into());
        line.insert("@timestamp".into(), timestamp.into());
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<String> = scope
                .from_root()
                .map(|span| {
                    let extensions = span.extensions();
                    match extensions.get::<FormattedFields<N>>() {
                        Some(f) if !f.is_empty() => format!("{}{{{f}}}", span.name()),
                        _ => span.name().to_owned(),
                    }
                })
                .collect();
            if !spans.is_empty() {
                line.insert("span".into(), spans.join(":").into());
            }
        }
        for (key, value) in fields.others {
            line.entry(key).or_insert(value);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

#[cfg(test)]
mod tests {
    use super::HclogJson;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("the buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn events_are_hclog_json_lines() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .event_format(HclogJson)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("task", job = "j1", task = "Src");
            let _entered = span.enter();
            tracing::warn!(
                addr = "127.0.0.1:1",
                tries = 3,
                ok = false,
                epoch = 1_796_032_373_100_360_700_u64,
                "cannot \"connect\""
            );
            tracing::error!("second");
        });
        let text = String::from_utf8(buffer.0.lock().expect("the buffer").clone()).expect("UTF-8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0];
        assert_eq!(first["@level"], "warn");
        assert_eq!(first["@message"], "cannot \"connect\"");
        assert_eq!(first["addr"], "127.0.0.1:1");
        assert_eq!(first["tries"], 3);
        assert_eq!(first["ok"], false);
        assert_eq!(first["epoch"], "1796032373100360700");
        assert_eq!(first["span"], "task{job=\"j1\" task=\"Src\"}");
        assert_eq!(first["target"], module_path!());
        // go-plugin parses "2006-01-02T15:04:05.000000Z07:00": six fraction digits, then Z.
        let stamp = first["@timestamp"].as_str().expect("a string");
        assert_eq!(stamp.len(), 27, "{stamp}");
        assert_eq!(&stamp[19..20], ".");
        assert!(stamp[20..26].bytes().all(|b| b.is_ascii_digit()), "{stamp}");
        assert!(stamp.ends_with('Z'), "{stamp}");
        assert_eq!(lines[1]["@level"], "error");
    }
}
