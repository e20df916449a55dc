//! `twofold demo`: the main job on the lab. Brings the lab up, boots the demo guest, migrates it
//! back and forth between the hosts, and proves with the guest's own heartbeat and disk records
//! that it never stopped for long and lost nothing.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use twofold::hypervisor::MigrationCancel;
use twofold::inventory::Inventory;
use twofold::lab::{checker, console::unix_ms, Lab, UpOptions, DEMO_VM};

use super::progress::TermProgress;
use super::Cli;

#[derive(Args)]
pub struct DemoArgs {
    /// How many migrations (alternating host1 -> host2 -> host1 ...).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=100))]
    rounds: u32,
    /// Take the lab down at the end (by default it stays up to look around).
    #[arg(long)]
    down: bool,
}

pub fn run(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    let lab = Lab::new();
    let progress = TermProgress::new(false);
    println!("== bringing the four-node lab up (two hosts, two storage nodes)");
    let status = lab.up(
        &UpOptions {
            bare: false,
            twofold_exe: std::env::current_exe()?,
            inventory: Some(cli.db()),
        },
        &progress,
    )?;
    for n in &status.nodes {
        println!(
            "   {:6} {:8} {:14} {}",
            n.name,
            n.role.as_str(),
            n.address,
            n.state
        );
    }
    let start = unix_ms();
    let log = lab.console_dir().join(format!("{DEMO_VM}.log"));
    println!("== waiting for the demo guest's heartbeat (every 100 ms on its serial console)");
    wait_heartbeats(&log, start - 60_000)?;

    let inv = Inventory::open(&cli.db())?;
    let hosts = twofold::platform::host_targets(&inv)?;
    let list = twofold::vm::list_blocking(&hosts, &inv)?;
    let mut on = list
        .vms
        .iter()
        .find(|v| v.name == DEMO_VM && v.state.is_migratable())
        .map(|v| v.host.clone())
        .ok_or_else(|| anyhow::anyhow!("the demo guest is not running on any host"))?;
    println!(
        "== {DEMO_VM} runs on {on}; live-migrating it {} times",
        args.rounds
    );
    let mut downtimes = Vec::new();
    for round in 1..=args.rounds {
        let to = if on == "host1" { "host2" } else { "host1" };
        let before = unix_ms();
        // Each round prints its own line; the engine's progress would repeat it.
        let stats = twofold::vm::migrate_blocking(
            &hosts,
            &inv,
            DEMO_VM,
            to,
            &twofold::progress::NoProgress,
            &MigrationCancel::new(),
        )?;
        // Let a few heartbeats arrive from the new host before judging the gap.
        std::thread::sleep(Duration::from_millis(600));
        let hb = checker::check_heartbeats(&log, DEMO_VM, before, None)?;
        println!(
            "   {round:2}: {} -> {}  downtime {:>4} ms  total {:>5} ms  guest: largest heartbeat gap {} ms, {} missing",
            stats.from,
            stats.to,
            stats.downtime_ms.map_or("?".into(), |v| v.to_string()),
            stats.total_ms.map_or("?".into(), |v| v.to_string()),
            hb.max_gap_ms,
            hb.missing_count()
        );
        if let Some(d) = stats.downtime_ms {
            downtimes.push(d);
        }
        on = to.to_string();
    }
    let check = twofold::lab::check_guest_since(&lab, DEMO_VM, start)?;
    println!("== what the guest says");
    for line in check.to_string().lines() {
        println!("   {line}");
    }
    if !downtimes.is_empty() {
        downtimes.sort_unstable();
        println!(
            "   median downtime {} ms over {} migrations",
            downtimes[downtimes.len() / 2],
            downtimes.len()
        );
    }
    if args.down {
        lab.down(&progress)?;
        println!("== lab is down");
    } else {
        println!("== the lab stays up: try `twofold vm list`, `twofold lab status`, `twofold lab exec host1 -- virsh list`; `twofold lab down` removes it");
    }
    Ok(if check.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn wait_heartbeats(log: &std::path::Path, since: i64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = checker::check_heartbeats(log, DEMO_VM, since, None) {
            if r.lines >= 5 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!(
                "no heartbeat from the demo guest within 2 minutes; see {} and the guest's log on its host",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
