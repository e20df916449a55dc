//! Running the system tools the lab is made of (ip, unshare, nsenter, ssh-keygen, gluster),
//! with errors that carry the command and what it printed.

use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// Run a command to completion; fail with its stderr if it exits non-zero.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let out = output(program, args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::Lab(format!(
            "`{} {}` failed ({}): {}",
            program,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Run a command and report only whether it succeeded (for probes and best-effort cleanup).
pub fn ok(program: &str, args: &[&str]) -> bool {
    output(program, args)
        .map(|o| o.status.success())
        .unwrap_or(false)
}

pub fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::Lab(format!(
                "cannot run `{program}` ({e}); run installer/install-deps.sh to install the lab's tools"
            ))
        })
}

/// Is a program on PATH?
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}
