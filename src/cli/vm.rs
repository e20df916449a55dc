//! `twofold vm ...`

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use twofold::hypervisor::{MigrationCancel, MigrationStats};
use twofold::inventory::Inventory;

use super::progress::TermProgress;
use super::{print_table, Cli};

#[derive(Subcommand)]
pub enum VmCmd {
    /// Every VM on every host, with its state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Live-migrate a running VM to another host (shared storage: only memory moves).
    Migrate {
        /// The VM's name.
        vm: String,
        /// The host to move it to.
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cli: &Cli, cmd: &VmCmd) -> Result<ExitCode> {
    let inv = Inventory::open(&cli.db())?;
    let hosts = twofold::platform::host_targets(&inv)?;
    match cmd {
        VmCmd::List { json } => {
            let list = twofold::vm::list_blocking(&hosts, &inv)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                let rows: Vec<Vec<String>> = list
                    .vms
                    .iter()
                    .map(|v| {
                        vec![
                            v.name.clone(),
                            v.host.clone(),
                            v.state.to_string(),
                            v.vcpus.to_string(),
                            format!("{} MiB", v.memory_mib),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "HOST", "STATE", "VCPUS", "MEMORY"], &rows);
                for h in list.hosts.iter().filter(|h| !h.reachable) {
                    eprintln!(
                        "warning: host {} did not answer: {}",
                        h.name,
                        h.error.as_deref().unwrap_or("unknown error")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        VmCmd::Migrate { vm, to, json } => {
            let progress = TermProgress::new(*json);
            let stats = twofold::vm::migrate_blocking(
                &hosts,
                &inv,
                vm,
                to,
                &progress,
                &MigrationCancel::new(),
            )?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&stats)?);
            } else {
                println!("{}", describe(&stats));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line a person reads after a migration.
pub fn describe(s: &MigrationStats) -> String {
    let ms = |v: Option<u64>| v.map_or("?".to_string(), |v| format!("{v} ms"));
    let mib = s.data_processed_bytes.map_or("?".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / 1048576.0)
    });
    format!(
        "migrated {} from {} to {}: downtime {}, total {} (command {} ms), {} moved",
        s.vm,
        s.from,
        s.to,
        ms(s.downtime_ms),
        ms(s.total_ms),
        s.wall_ms,
        mib
    )
}
