//! Tells the gateway the commit it is built from (`DTLE_GIT_COMMIT`, 8 hex digits), for
//! SeaTunnel's `gitCommitAbbrev`. Outside a git checkout, or without git, it is left unset and
//! the API says `unknown`. The build script runs again when the checkout's HEAD moves.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-env-changed=DTLE_GIT_COMMIT");
    if let Ok(given) = std::env::var("DTLE_GIT_COMMIT") {
        println!("cargo:rustc-env=DTLE_GIT_COMMIT={given}");
        return;
    }
    let Some(commit) = git(&["rev-parse", "--short=8", "HEAD"]) else {
        return;
    };
    println!("cargo:rustc-env=DTLE_GIT_COMMIT={commit}");
    // Run again when HEAD moves: HEAD itself (another branch), the branch's ref, packed refs.
    let mut watched = vec![git(&["rev-parse", "--git-path", "HEAD"])];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(git(&["rev-parse", "--git-path", &branch]));
    }
    watched.push(git(&["rev-parse", "--git-path", "packed-refs"]));
    // A file that does not exist would make every build run this again.
    for path in watched.into_iter().flatten() {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
