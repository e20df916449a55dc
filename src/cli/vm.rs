//! `twofold vm ...`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use twofold::hypervisor::{MigrationCancel, MigrationStats};
use twofold::inventory::Inventory;
use twofold::vm::create::{CreateSpec, Source};

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
    /// Create a VM with its disk on the replicated store, and start it.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["iso", "image", "lab_guest"])))]
    Create(CreateArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// The new VM's name (letters, digits, '-' and '_').
    name: String,
    /// The host to run it on.
    #[arg(long)]
    host: String,
    #[arg(long, default_value_t = 1)]
    vcpus: u32,
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    memory_mib: u64,
    /// Size of its disk (with --image: at least the image's size).
    #[arg(long, value_name = "GIB", default_value_t = 20)]
    disk_gib: u64,
    /// Install from this ISO file (copied to the store; the VM boots from it, then from its disk).
    #[arg(long, value_name = "FILE")]
    iso: Option<PathBuf>,
    /// Use this disk image (qcow2 or raw, copied to the store) as the VM's disk.
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The lab's test guest (heartbeat and checked writes on its serial console; lab only).
    #[arg(long)]
    lab_guest: bool,
    /// Restart it on the other host when its host dies.
    #[arg(long)]
    protect: bool,
    /// 0-100: higher restarts first.
    #[arg(long, default_value_t = 50)]
    priority: u32,
    /// Define it, but do not start it.
    #[arg(long)]
    no_start: bool,
    #[arg(long)]
    json: bool,
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
        VmCmd::Create(a) => {
            let source = if let Some(p) = &a.iso {
                Source::Iso { path: p.clone() }
            } else if let Some(p) = &a.image {
                Source::Image { path: p.clone() }
            } else {
                lab_guest_source(&a.name)?
            };
            let spec = CreateSpec {
                name: a.name.clone(),
                host: a.host.clone(),
                vcpus: a.vcpus,
                memory_mib: a.memory_mib,
                disk_gib: a.disk_gib,
                source,
                protected: a.protect,
                priority: a.priority,
                console: a.lab_guest.then(twofold::lab::console_addr),
                no_start: a.no_start,
            };
            let progress = TermProgress::new(a.json);
            let created = twofold::vm::create::create_blocking(&hosts, &inv, &spec, &progress)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&created)?);
            } else {
                println!(
                    "created {} on {} ({}), disk {}{}{}",
                    created.name,
                    created.host,
                    if created.started {
                        "running"
                    } else {
                        "not started"
                    },
                    created.disk,
                    if created.protected {
                        format!("; protected, restart priority {}", created.priority)
                    } else {
                        "; not protected".to_string()
                    },
                    created
                        .iso
                        .as_deref()
                        .map(|i| format!("; installer {i}"))
                        .unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The lab's test guest: kernel and initramfs from the lab's guest cache (built by `lab up`).
fn lab_guest_source(name: &str) -> Result<Source> {
    let lab = twofold::lab::Lab::new();
    let assets =
        twofold::lab::guest::build_assets(&lab.guest_cache(), &twofold::progress::NoProgress)?;
    Ok(Source::Kernel {
        kernel: assets.kernel,
        initrd: assets.initrd,
        cmdline: twofold::lab::guest::kernel_cmdline(name),
    })
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
