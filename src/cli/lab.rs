//! `twofold lab ...`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use twofold::lab::{Lab, LabStatus, UpOptions};

use super::progress::TermProgress;
use super::{print_table, Cli};

#[derive(Subcommand)]
pub enum LabCmd {
    /// Create the four nodes (idempotent) and report each node's address and state.
    Up {
        /// Nodes that run nothing but sshd, for provisioning them from scratch.
        #[arg(long)]
        bare: bool,
        #[arg(long)]
        json: bool,
    },
    /// Each node's address, state and daemons.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Remove every process, namespace, veth and bridge of the lab.
    Down,
    /// Run a command inside a node's namespaces: `twofold lab exec host1 -- virsh list`.
    Exec {
        node: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Print the node list (TOML) that later commands take with --nodes.
    Nodes,
    /// Check a lab guest's heartbeat log and its disk records.
    Check {
        #[arg(default_value = twofold::lab::DEMO_VM)]
        vm: String,
        /// Only heartbeats received in the last N seconds.
        #[arg(long, default_value_t = 60)]
        last: u64,
        #[arg(long)]
        json: bool,
    },
    /// The daemon that collects the lab guests' serial consoles (started by `lab up`).
    #[command(hide = true)]
    ConsoleServer {
        #[arg(long)]
        bind: SocketAddr,
        #[arg(long)]
        dir: PathBuf,
    },
}

pub fn run(cli: &Cli, cmd: &LabCmd) -> Result<ExitCode> {
    let lab = Lab::new();
    match cmd {
        LabCmd::Up { bare, json } => {
            let progress = TermProgress::new(*json);
            let opts = UpOptions {
                bare: *bare,
                twofold_exe: std::env::current_exe()?,
                inventory: Some(cli.db()),
            };
            let status = lab.up(&opts, &progress)?;
            print_status(&status, *json)?;
            Ok(if status.all_running() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LabCmd::Status { json } => {
            print_status(&lab.status()?, *json)?;
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Down => {
            lab.down(&TermProgress::new(false))?;
            if let Ok(inv) = twofold::inventory::Inventory::open(&cli.db()) {
                for n in twofold::lab::NODES {
                    inv.remove_node(n.name)?;
                }
            }
            println!("lab is down: no node, namespace, link or bridge left");
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Exec { node, command } => {
            let code = lab.exec(node, command)?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        LabCmd::Nodes => {
            print!("{}", lab.node_list()?.to_toml());
            Ok(ExitCode::SUCCESS)
        }
        LabCmd::Check { vm, last, json } => {
            let report = twofold::lab::check_guest(&lab, vm, *last)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!("{report}");
            }
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        LabCmd::ConsoleServer { bind, dir } => {
            twofold::lab::console::run_forever(*bind, dir)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_status(s: &LabStatus, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = s
        .nodes
        .iter()
        .map(|n| {
            let daemons: Vec<String> = n
                .daemons
                .iter()
                .map(|d| format!("{}{}", d.name, if d.running { "" } else { "(down)" }))
                .collect();
            vec![
                n.name.clone(),
                n.role.as_str().to_string(),
                n.address.clone(),
                n.ssh_port.to_string(),
                n.state.clone(),
                daemons.join(" "),
            ]
        })
        .collect();
    print_table(
        &["NODE", "ROLE", "ADDRESS", "SSH", "STATE", "DAEMONS"],
        &rows,
    );
    if let Some(t) = &s.domain_type {
        println!("guests run as domain type '{t}'");
    }
    if let Some(c) = &s.console {
        println!(
            "console server: {c} (logs in {})",
            s.dir.join("console").display()
        );
    }
    Ok(())
}
