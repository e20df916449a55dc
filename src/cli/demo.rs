//! `twofold demo`: the main job on the lab. Brings the lab up, boots the demo guest, migrates it
//! back and forth between the hosts, and proves with the guest's own heartbeat and disk records
//! that it never stopped for long and lost nothing.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use twofold::inventory::Inventory;
use twofold::lab::rounds::{self, Judge};
use twofold::lab::{Lab, UpOptions, DEMO_VM};

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
    println!("== waiting for the demo guest's heartbeat (every 100 ms on its serial console)");
    rounds::wait_heartbeats(&lab, DEMO_VM, 5, Duration::from_secs(120))?;

    let inv = Inventory::open(&cli.db())?;
    let hosts = twofold::platform::host_targets(&inv)?;
    let on = rounds::running_on(&hosts, &inv, DEMO_VM)?;
    println!(
        "== {DEMO_VM} runs on {on}; live-migrating it {} times",
        args.rounds
    );
    let run = rounds::migrate_rounds(
        &lab,
        DEMO_VM,
        &on,
        args.rounds,
        Judge::Heartbeats,
        rounds::twofold_migration(&hosts, &inv, DEMO_VM),
        |r| {
            println!(
                "   {:2}: {} -> {}  downtime {:>4} ms  total {:>5} ms  guest: largest heartbeat gap {} ms, {} missing",
                r.number,
                r.from,
                r.to,
                r.moved.downtime_ms.map_or("?".into(), |v| v.to_string()),
                r.moved.total_ms.map_or("?".into(), |v| v.to_string()),
                r.heartbeats.max_gap_ms,
                r.heartbeats.missing_count()
            );
        },
    )?;
    println!("== what the guest says");
    for line in run.whole.to_string().lines() {
        println!("   {line}");
    }
    if let Some(d) = run.median_downtime_ms() {
        println!(
            "   median downtime {d} ms over {} migrations",
            run.rounds.len()
        );
    }
    if args.down {
        lab.down(&progress)?;
        println!("== lab is down");
    } else {
        println!("== the lab stays up: try `twofold vm list`, `twofold lab status`, `twofold lab exec host1 -- virsh list`; `twofold lab down` removes it");
    }
    Ok(if run.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
