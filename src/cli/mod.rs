//! Argument parsing and the commands. Each command is a thin layer over the engine: it parses,
//! calls one engine function, and prints the result as a table or as JSON.

mod demo;
mod lab;
mod progress;
mod setup;
mod status;
mod vm;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use twofold::logging;

#[derive(Parser)]
#[command(
    name = "twofold",
    version,
    about = "High-availability virtualization for small businesses"
)]
pub struct Cli {
    /// The inventory database (default: $TWOFOLD_DB or /var/lib/twofold/twofold.db).
    #[arg(long, global = true, value_name = "PATH")]
    db: Option<PathBuf>,
    /// Log more on stderr: -v what Twofold does, -vv its details, -vvv everything
    /// (RUST_LOG, e.g. RUST_LOG=twofold=debug, overrides).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Where log lines go: stderr, or systemd's journal; auto picks the journal when systemd
    /// runs Twofold as a service.
    #[arg(long, global = true, value_enum, default_value_t = LogTo::Auto, value_name = "WHERE")]
    log: LogTo,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The built-in four-node lab (two hosts, two storage nodes) on this machine.
    #[command(subcommand)]
    Lab(lab::LabCmd),
    /// Virtual machines on the platform's hosts.
    #[command(subcommand)]
    Vm(vm::VmCmd),
    /// Set the platform up on its four machines: plan, apply, verify.
    #[command(subcommand)]
    Setup(setup::SetupCmd),
    /// One look at the platform: every node's state, the VMs, the overall health.
    Status(status::StatusArgs),
    /// Bring the lab up, boot the demo guest and migrate it back and forth, proving it lost nothing.
    Demo(demo::DemoArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogTo {
    Auto,
    Stderr,
    Journald,
}

impl Cli {
    fn db(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(twofold::inventory::default_path)
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let output = match cli.log {
        LogTo::Auto => logging::Output::Auto,
        LogTo::Stderr => logging::Output::Stderr,
        LogTo::Journald => logging::Output::Journald,
    };
    logging::init(output, logging::verbosity_filter(cli.verbose));
    let name = match &cli.command {
        Command::Lab(_) => "lab",
        Command::Vm(_) => "vm",
        Command::Setup(_) => "setup",
        Command::Status(_) => "status",
        Command::Demo(_) => "demo",
    };
    tracing::info!(inventory = %cli.db().display(), "twofold {name}");
    tracing::debug!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "build"
    );
    let result = match &cli.command {
        Command::Lab(c) => lab::run(&cli, c),
        Command::Vm(c) => vm::run(&cli, c),
        Command::Setup(c) => setup::run(&cli, c),
        Command::Status(a) => status::run(&cli, a),
        Command::Demo(a) => demo::run(&cli, a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Print a table with aligned columns.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:w$}", c, w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|s| s.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}
