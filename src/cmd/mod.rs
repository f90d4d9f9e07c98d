//! One module per subcommand group.

mod advertise;
pub mod agent;
pub mod job;
pub mod nats;
pub mod plugin;
pub mod task;

/// Resolves at Ctrl-C or SIGTERM: how a foreground `dtle` is asked to stop.
pub async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
