//! `twofold status [--json]`: one look at the platform, the same one the tray and the dashboard
//! take (the engine's [`Monitor::poll`]): every node's state, the VMs and the overall health.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use twofold::provision::connect;
use twofold::status::Monitor;

use super::{print_table, Cli};

#[derive(Args)]
pub struct StatusArgs {
    /// The private key to log in to the nodes with (default: Twofold's own key, beside the
    /// inventory).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Exit status 0 when the look was taken, whatever it found; the health is in the output.
pub fn run(cli: &Cli, args: &StatusArgs) -> Result<ExitCode> {
    let db = cli.db();
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| connect::key_dir(&db).join("twofold_ed25519"));
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let status = rt.block_on(Monitor::new(&key).poll(&db))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Platform: {}. {}", status.health.as_str(), status.summary);
    if !status.nodes.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = status
            .nodes
            .iter()
            .map(|n| {
                vec![
                    n.name.clone(),
                    n.role.as_str().to_string(),
                    n.state.as_str().to_string(),
                    n.detail.clone(),
                ]
            })
            .collect();
        print_table(&["NODE", "ROLE", "STATE", "DETAIL"], &rows);
    }
    if !status.vms.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = status
            .vms
            .iter()
            .map(|v| vec![v.name.clone(), v.host.clone(), v.state.to_string()])
            .collect();
        print_table(&["VM", "HOST", "STATE"], &rows);
    }
    if !status.rules.is_empty() {
        println!();
        for r in &status.rules {
            println!("{}: {}", r.title, r.detail);
        }
    }
    Ok(ExitCode::SUCCESS)
}
