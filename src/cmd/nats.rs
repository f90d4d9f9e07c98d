//! The NATS credentials and TLS settings of `dtle agent` and `dtle task run`: flags and
//! environment variables ([`NatsArgs`]) over the agent config file's `[nats]` section
//! ([`NatsSection`]), checked into a [`NatsSecurity`] before anything starts.
//!
//! Secrets (password, token, NKey seed) come from the environment (`DTLE_NATS_PASSWORD`,
//! `DTLE_NATS_TOKEN`, `DTLE_NATS_NKEY_SEED`) or the config file, never from the command line:
//! a flag shows in the process list to every user of the host. The flags exist so that `--help`
//! lists the variables, and a value given as a flag is refused with a message naming the
//! variable.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, FromArgMatches};
use driver::transport::security::{
    NatsSecurity, NatsSettings, ENV_NKEY_SEED, ENV_PASSWORD, ENV_TOKEN,
};
use jobs::Password;
use serde::Deserialize;
use std::path::PathBuf;

/// The flags as clap derives them; [`NatsArgs`] adds the refusal of secrets given as flags.
#[derive(Args, Clone)]
pub struct NatsFlags {
    /// NATS user name (with DTLE_NATS_PASSWORD).
    #[arg(
        id = "nats_user",
        long = "nats-user",
        env = "DTLE_NATS_USER",
        value_name = "USER"
    )]
    user: Option<String>,
    /// NATS password: from the environment only.
    #[arg(id = "nats_password", long = "nats-password", env = ENV_PASSWORD,
          hide_env_values = true, value_name = "FROM_ENV")]
    password: Option<String>,
    /// NATS token: from the environment only.
    #[arg(id = "nats_token", long = "nats-token", env = ENV_TOKEN,
          hide_env_values = true, value_name = "FROM_ENV")]
    token: Option<String>,
    /// NATS NKey user seed (SU...): from the environment only.
    #[arg(id = "nats_nkey_seed", long = "nats-nkey-seed", env = ENV_NKEY_SEED,
          hide_env_values = true, value_name = "FROM_ENV")]
    nkey_seed: Option<String>,
    /// File holding a NATS NKey user seed.
    #[arg(
        id = "nats_nkey_seed_file",
        long = "nats-nkey-seed-file",
        env = "DTLE_NATS_NKEY_SEED_FILE",
        value_name = "FILE"
    )]
    nkey_seed_file: Option<PathBuf>,
    /// NATS .creds file (user JWT and seed, as nsc writes it).
    #[arg(
        id = "nats_creds",
        long = "nats-creds",
        env = "DTLE_NATS_CREDS",
        value_name = "FILE"
    )]
    credentials_file: Option<PathBuf>,
    /// PEM file of the CA that signed the NATS server's certificate.
    #[arg(
        id = "nats_ca",
        long = "nats-ca",
        env = "DTLE_NATS_CA",
        value_name = "FILE"
    )]
    ca_file: Option<PathBuf>,
    /// PEM client certificate for NATS (with --nats-key).
    #[arg(
        id = "nats_cert",
        long = "nats-cert",
        env = "DTLE_NATS_CERT",
        value_name = "FILE"
    )]
    cert_file: Option<PathBuf>,
    /// PEM key of the NATS client certificate.
    #[arg(
        id = "nats_key",
        long = "nats-key",
        env = "DTLE_NATS_KEY",
        value_name = "FILE"
    )]
    key_file: Option<PathBuf>,
    /// Refuse a NATS connection without TLS.
    #[arg(
        id = "nats_require_tls",
        long = "nats-require-tls",
        env = "DTLE_NATS_REQUIRE_TLS"
    )]
    require_tls: bool,
}

/// NATS flags and variables, secrets refused on the command line.
#[derive(Clone)]
pub struct NatsArgs(NatsFlags);

impl std::fmt::Debug for NatsArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let flags = &self.0;
        let set = |v: &Option<String>| v.as_ref().map(|_| Password::MASK);
        f.debug_struct("NatsArgs")
            .field("user", &flags.user)
            .field("password", &set(&flags.password))
            .field("token", &set(&flags.token))
            .field("nkey_seed", &set(&flags.nkey_seed))
            .field("ca_file", &flags.ca_file)
            .finish_non_exhaustive()
    }
}

/// The secret flags, with the variable to use instead.
const SECRETS: [(&str, &str, &str); 3] = [
    ("nats_password", "--nats-password", ENV_PASSWORD),
    ("nats_token", "--nats-token", ENV_TOKEN),
    ("nats_nkey_seed", "--nats-nkey-seed", ENV_NKEY_SEED),
];

fn refuse_secret_flags(matches: &ArgMatches) -> Result<(), clap::Error> {
    for (id, flag, variable) in SECRETS {
        if matches.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "{flag} is not taken from the command line, where every user of this host \
                     can read it in the process list: set {variable} in the environment instead \
                     (or the agent config file's [nats] section)\n"
                ),
            ));
        }
    }
    Ok(())
}

impl FromArgMatches for NatsArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        refuse_secret_flags(matches)?;
        NatsFlags::from_arg_matches(matches).map(NatsArgs)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        refuse_secret_flags(matches)?;
        self.0.update_from_arg_matches(matches)
    }
}

impl Args for NatsArgs {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        NatsFlags::augment_args(cmd)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        NatsFlags::augment_args_for_update(cmd)
    }
}

/// The agent config file's `[nats]` section (every key optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsSection {
    /// The NATS URL (`nats://host:port`, `tls://host:port`); `--nats` wins, and the top-level
    /// `nats_url` must not be given as well.
    pub url: Option<String>,
    /// User name, with `password`.
    user: Option<String>,
    /// Password (`DTLE_NATS_PASSWORD` wins).
    password: Option<Password>,
    /// Token (`DTLE_NATS_TOKEN` wins).
    token: Option<Password>,
    /// NKey user seed (`DTLE_NATS_NKEY_SEED` wins).
    nkey_seed: Option<Password>,
    /// File holding an NKey user seed.
    nkey_seed_file: Option<PathBuf>,
    /// A `.creds` file.
    credentials_file: Option<PathBuf>,
    /// PEM file of the CA that signed the server's certificate.
    ca_file: Option<PathBuf>,
    /// PEM client certificate.
    cert_file: Option<PathBuf>,
    /// PEM key of the client certificate.
    key_file: Option<PathBuf>,
    /// Refuse a connection without TLS.
    require_tls: Option<bool>,
}

/// The settings: each flag or variable over the file's value.
pub fn settings(args: &NatsArgs, file: Option<&NatsSection>) -> NatsSettings {
    let flags = &args.0;
    let default = NatsSection::default();
    let file = file.unwrap_or(&default);
    let secret = |given: &Option<String>, filed: &Option<Password>| {
        given
            .as_deref()
            .filter(|v| !v.is_empty())
            .map(Password::new)
            .or_else(|| filed.clone())
    };
    NatsSettings {
        user: flags.user.clone().or_else(|| file.user.clone()),
        password: secret(&flags.password, &file.password),
        token: secret(&flags.token, &file.token),
        nkey_seed: secret(&flags.nkey_seed, &file.nkey_seed),
        nkey_seed_file: flags
            .nkey_seed_file
            .clone()
            .or_else(|| file.nkey_seed_file.clone()),
        credentials_file: flags
            .credentials_file
            .clone()
            .or_else(|| file.credentials_file.clone()),
        ca_file: flags.ca_file.clone().or_else(|| file.ca_file.clone()),
        cert_file: flags.cert_file.clone().or_else(|| file.cert_file.clone()),
        key_file: flags.key_file.clone().or_else(|| file.key_file.clone()),
        require_tls: flags.require_tls || file.require_tls.unwrap_or(false),
    }
}

/// The checked settings, or an error saying which to fix.
///
/// # Errors
/// The settings' own error (a second method, an unreadable file, a malformed seed).
pub fn security(args: &NatsArgs, file: Option<&NatsSection>) -> anyhow::Result<NatsSecurity> {
    Ok(settings(args, file).load()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        nats: NatsArgs,
    }

    #[test]
    fn a_secret_on_the_command_line_is_refused_with_the_variable_to_use() {
        let err = Cli::try_parse_from(["dtle", "--nats-password", "hunter2"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("DTLE_NATS_PASSWORD") && !err.contains("hunter2"),
            "{err}"
        );
        let cli = Cli::try_parse_from(["dtle", "--nats-user", "job_a", "--nats-ca", "/ca.pem"])
            .expect("not secrets");
        let settings = settings(&cli.nats, None);
        assert_eq!(settings.user.as_deref(), Some("job_a"));
    }

    #[test]
    fn flags_win_over_the_file() {
        let file: NatsSection = toml::from_str(
            r#"
            url = "tls://127.0.0.1:8194"
            user = "from_file"
            password = "file-secret"
            ca_file = "/file/ca.pem"
            require_tls = true
            "#,
        )
        .expect("a section");
        let shown = format!("{file:?}");
        assert!(!shown.contains("file-secret"), "{shown}");
        let cli = Cli::try_parse_from(["dtle", "--nats-ca", "/flag/ca.pem"]).expect("flags");
        let merged = settings(&cli.nats, Some(&file));
        assert_eq!(merged.user.as_deref(), Some("from_file"));
        assert_eq!(merged.ca_file, Some(PathBuf::from("/flag/ca.pem")));
        assert_eq!(
            merged.password.as_ref().map(Password::expose),
            Some("file-secret")
        );
        assert!(merged.require_tls);
    }
}
