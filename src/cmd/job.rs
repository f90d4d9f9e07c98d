//! `dtle job ...`: job files on the command line.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

/// Where the agent's API is.
#[derive(clap::Args, Debug, Clone)]
pub struct Agent {
    /// The agent's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8190", env = "DTLE_ADDR")]
    address: String,
    /// The API token sent to the agent (`Authorization: Bearer`). From the environment only: a
    /// value on the command line is refused.
    #[arg(long, env = "DTLE_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    token: Option<String>,
    /// A PEM CA bundle to trust for an `https://` agent (default: the system's web roots).
    #[arg(long, env = "DTLE_CACERT", value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The HTTP client trusting `cacert`, once built.
    #[arg(skip)]
    client: Option<ureq::Agent>,
}

impl Agent {
    /// Builds the HTTP client when a CA bundle is given.
    ///
    /// # Errors
    /// An unreadable bundle, or one without a certificate.
    fn connect(mut self) -> anyhow::Result<Self> {
        let Some(path) = &self.cacert else {
            return Ok(self);
        };
        let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pemfile_certs(&pem) {
            roots
                .add(cert)
                .with_context(|| format!("a certificate of {} is not valid", path.display()))?;
        }
        anyhow::ensure!(
            !roots.is_empty(),
            "{} holds no PEM certificate",
            path.display()
        );
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        self.client = Some(
            ureq::AgentBuilder::new()
                .tls_config(std::sync::Arc::new(config))
                .build(),
        );
        Ok(self)
    }
}

/// The certificates of a PEM bundle (the DER of each `CERTIFICATE` block).
fn rustls_pemfile_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect()
}

impl Agent {
    /// A request to the agent, with the token.
    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let url = format!("{}{path}", self.address);
        let request = match &self.client {
            Some(client) => client.request(method, &url),
            None => ureq::request(method, &url),
        };
        match self.token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => request.set("Authorization", &format!("Bearer {token}")),
            None => request,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum JobCommand {
    /// Submit a job (dtle JSON, Nomad JSON or Nomad HCL) to the agent: creates it, or updates the
    /// job with the same ID.
    Run {
        /// The job file; `-` reads standard input.
        file: PathBuf,
        #[command(flatten)]
        agent: Agent,
    },
    /// Show one job (its tasks, snapshot progress or lag), or list every job.
    Status {
        /// The job ID; none lists all jobs.
        id: Option<String>,
        #[command(flatten)]
        agent: Agent,
    },
    /// Stop a job's tasks (its position on the target is kept).
    Stop {
        /// The job ID.
        id: String,
        /// Also forget the job.
        #[arg(long)]
        purge: bool,
        /// Also delete the job's position rows on the target (a job posted again starts afresh).
        #[arg(long)]
        purge_position: bool,
        #[command(flatten)]
        agent: Agent,
    },
    /// Check a job file and print the job as dtle-rs understands it (passwords masked).
    ///
    /// Exits 0 when the job is valid (warnings go to stderr), 1 when it is not, listing every
    /// problem with its path in the file.
    Validate {
        /// The job: dtle JSON, Nomad JSON or Nomad HCL; `-` reads standard input.
        file: PathBuf,
    },
}

pub fn run(command: JobCommand) -> anyhow::Result<ExitCode> {
    match command {
        JobCommand::Validate { file } => validate(&file),
        JobCommand::Run { file, agent } => submit(&file, &agent.connect()?),
        JobCommand::Status { id, agent } => status(id.as_deref(), &agent.connect()?),
        JobCommand::Stop {
            id,
            purge,
            purge_position,
            agent,
        } => stop(&id, purge, purge_position, &agent.connect()?),
    }
}

fn read(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the job from standard input")
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn validate(file: &PathBuf) -> anyhow::Result<ExitCode> {
    let text = read(file)?;
    match jobs::parse_job(&text) {
        Ok(parsed) => {
            for warning in &parsed.warnings {
                eprintln!("warning: {warning}");
            }
            eprintln!(
                "{}: a valid {} (job {:?})",
                file.display(),
                parsed.format,
                parsed.spec.id
            );
            println!("{}", serde_json::to_string_pretty(&parsed.spec.redacted())?);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("{}: {err}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Calls the agent; an error status prints the agent's message(s) and fails.
fn call(request: ureq::Request, body: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let url = request.url().to_owned();
    let result = match body {
        Some(body) => request.send_string(body),
        None => request.call(),
    };
    match result {
        Ok(response) => response
            .into_json::<serde_json::Value>()
            .with_context(|| format!("reading the answer of {url}")),
        Err(ureq::Error::Status(code, response)) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let mut message = body["Error"].as_str().unwrap_or("(no message)").to_owned();
            if let Some(errors) = body["Errors"].as_array() {
                for e in errors {
                    message.push_str(&format!(
                        "\n  {}: {}",
                        e["Path"].as_str().unwrap_or_default(),
                        e["Message"].as_str().unwrap_or_default()
                    ));
                }
            }
            anyhow::bail!("the agent answered {code}: {message}")
        }
        Err(err) => {
            anyhow::bail!("cannot reach the agent at {url}: {err} (is `dtle agent` running?)")
        }
    }
}

fn submit(file: &PathBuf, agent: &Agent) -> anyhow::Result<ExitCode> {
    let text = read(file)?;
    let answer = call(agent.request("POST", "/v1/jobs"), Some(&text))?;
    for warning in answer["Warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", warning.as_str().unwrap_or_default());
    }
    println!(
        "job {} {} (evaluation {})",
        answer["ID"].as_str().unwrap_or_default(),
        if answer["Changed"].as_bool() == Some(false) {
            "unchanged"
        } else {
            "submitted"
        },
        answer["EvalID"].as_str().unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

fn stop(id: &str, purge: bool, purge_position: bool, agent: &Agent) -> anyhow::Result<ExitCode> {
    let path = format!("/v1/job/{id}?purge={purge}&purge_position={purge_position}");
    call(agent.request("DELETE", &path), None)?;
    println!(
        "job {id} stopped{}{}",
        if purge { " and purged" } else { "" },
        if purge_position {
            "; its position on the target is deleted"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `[#####.....]`, `width` wide.
fn bar(pct: f64, width: usize) -> String {
    let filled = ((pct / 100.0) * width as f64)
        .round()
        .clamp(0.0, width as f64) as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

fn status(id: Option<&str>, agent: &Agent) -> anyhow::Result<ExitCode> {
    let Some(id) = id else {
        let jobs = call(agent.request("GET", "/v1/jobs"), None)?;
        println!("{:<30} {:<10}", "ID", "STATUS");
        for job in jobs.as_array().into_iter().flatten() {
            println!(
                "{:<30} {:<10}",
                job["ID"].as_str().unwrap_or_default(),
                job["Status"].as_str().unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let job = call(agent.request("GET", &format!("/v1/job/{id}")), None)?;
    println!("job {id}: {}", job["Status"].as_str().unwrap_or_default());
    let allocs = call(
        agent.request("GET", &format!("/v1/job/{id}/allocations")),
        None,
    )?;
    for alloc in allocs.as_array().into_iter().flatten() {
        let task = alloc["Task"].as_str().unwrap_or_default();
        let alloc_id = alloc["ID"].as_str().unwrap_or_default();
        let state = &alloc["TaskStates"][task];
        let last_error = state["Events"]
            .as_array()
            .and_then(|e| {
                e.iter()
                    .rev()
                    .find(|e| !e["DriverError"].as_str().unwrap_or_default().is_empty())
            })
            .and_then(|e| e["DriverError"].as_str())
            .unwrap_or_default();
        println!(
            "  {task:<4} {} {} (allocation {})",
            alloc["ClientStatus"].as_str().unwrap_or_default(),
            if state["Failed"].as_bool() == Some(true) {
                "FAILED"
            } else {
                ""
            },
            &alloc_id[..alloc_id.len().min(8)]
        );
        if !last_error.is_empty() {
            println!("       last error: {last_error}");
        }
        let Ok(stats) = call(
            agent.request("GET", &format!("/v1/agent/allocation/{alloc_id}/stats")),
            None,
        ) else {
            continue;
        };
        let s = &stats["Tasks"][task];
        let pct: f64 = s["ProgressPct"]
            .as_str()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0.0);
        println!("       stage: {}", s["Stage"].as_str().unwrap_or_default());
        if pct < 100.0 {
            println!(
                "       snapshot {} {pct:.1}% ETA {}",
                bar(pct, 30),
                s["ETA"].as_str().unwrap_or("?")
            );
        } else {
            let lag = s["DelayCount"]["Time"].as_u64();
            println!(
                "       rows read {} applied {}, transactions read {} applied {}, lag {}",
                s["ReadMasterRowCount"],
                s["ExecMasterRowCount"],
                s["ReadMasterTxCount"],
                s["ExecMasterTxCount"],
                lag.map_or_else(|| "-".to_owned(), |l| format!("{l}s"))
            );
        }
        let coordinates = &s["CurrentCoordinates"];
        if !coordinates["GtidSet"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            println!(
                "       position: {} ({}:{})",
                coordinates["GtidSet"].as_str().unwrap_or_default(),
                coordinates["File"].as_str().unwrap_or_default(),
                coordinates["Position"]
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
