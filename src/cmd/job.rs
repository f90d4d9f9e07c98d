//! `dtle job ...`: job files on the command line.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum JobCommand {
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
