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

/// Refuses a secret given as a flag (`--admin-token`, `--read-token`, `--token`, ...): every user
/// of the machine can read a process's command line. Such arguments exist so that clap lists
/// their environment variable in `--help`; their value must come from there (or a config file).
///
/// # Errors
/// The first secret found on the command line, naming the variable to use instead.
pub fn refuse_secrets_on_command_line(
    command: &clap::Command,
    matches: &clap::ArgMatches,
) -> anyhow::Result<()> {
    for arg in command.get_arguments() {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        let id = arg.get_id().as_str();
        let secret = arg.is_hide_env_values_set();
        let given = matches.try_contains_id(id).unwrap_or(false)
            && matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if secret && given {
            anyhow::bail!(
                "--{long} was given on the command line, where every user of this machine can \
                 read it: set {} in the environment instead (or use the config file)",
                env.to_string_lossy()
            );
        }
    }
    if let Some((name, sub_matches)) = matches.subcommand() {
        if let Some(sub) = command.find_subcommand(name) {
            refuse_secrets_on_command_line(sub, sub_matches)?;
        }
    }
    Ok(())
}
