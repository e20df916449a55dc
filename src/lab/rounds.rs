//! Live-migrating a lab guest back and forth between the two hosts and judging every move by the
//! guest's own word (its heartbeats on the console server, and with [`Judge::HeartbeatsAndDisk`]
//! the records on its disk). The one loop the demo, the lab tests and the migration benchmark
//! run; what moves the guest (Twofold, or `virsh` as the benchmark's baseline) is the caller's.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::checker::{check_heartbeats, HeartbeatReport};
use super::console::unix_ms;
use super::verify::{check_guest_since, heartbeat_problems, GuestCheck};
use super::Lab;
use crate::error::{Error, Result};
use crate::hypervisor::{HostTarget, MigrationCancel, MigrationStats};
use crate::inventory::Inventory;
use crate::progress::NoProgress;

/// How long heartbeats keep coming from the new host before a round is judged: a gap at the end
/// of the move must be inside the window, not after it.
pub const SETTLE: Duration = Duration::from_millis(700);

/// What the tool that moved the guest reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Moved {
    pub downtime_ms: Option<u64>,
    pub total_ms: Option<u64>,
}

impl From<&MigrationStats> for Moved {
    fn from(s: &MigrationStats) -> Moved {
        Moved {
            downtime_ms: s.downtime_ms,
            total_ms: s.total_ms,
        }
    }
}

/// How deep each round is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judge {
    /// The heartbeats of the round (cheap: reads the console log).
    Heartbeats,
    /// The heartbeats and every acknowledged record on the disk (reads the whole disk).
    HeartbeatsAndDisk,
}

/// One move and what the guest said about it.
#[derive(Debug, Clone, Serialize)]
pub struct Round {
    /// From 1.
    pub number: u32,
    pub from: String,
    pub to: String,
    pub started_unix_ms: i64,
    /// When the round's window closed (after [`SETTLE`]); its heartbeats were read after that.
    pub judged_unix_ms: i64,
    /// Wall time of the move as the caller saw it.
    pub wall_ms: u64,
    pub moved: Moved,
    /// Heartbeats from the round's start to its judgement.
    pub heartbeats: HeartbeatReport,
    /// With [`Judge::HeartbeatsAndDisk`]: the same window and the disk's records.
    pub check: Option<GuestCheck>,
}

impl Round {
    pub fn problems(&self) -> Vec<String> {
        match &self.check {
            Some(c) => c.problems(),
            None => heartbeat_problems(&self.heartbeats),
        }
    }

    pub fn ok(&self) -> bool {
        self.problems().is_empty()
    }
}

/// Every round, and the guest's word over the whole run (heartbeats since the first round's
/// start, and the disk's records).
#[derive(Debug, Clone, Serialize)]
pub struct RoundTrips {
    pub started_unix_ms: i64,
    pub rounds: Vec<Round>,
    pub whole: GuestCheck,
}

impl RoundTrips {
    /// Every round and the whole run lost nothing and paused no longer than the limit.
    pub fn ok(&self) -> bool {
        self.whole.ok() && self.rounds.iter().all(Round::ok)
    }

    /// The median of the downtimes the tools reported, if any did.
    pub fn median_downtime_ms(&self) -> Option<u64> {
        let mut d: Vec<u64> = self
            .rounds
            .iter()
            .filter_map(|r| r.moved.downtime_ms)
            .collect();
        d.sort_unstable();
        d.get(d.len() / 2).copied()
    }
}

/// The other lab host.
pub fn other_host(host: &str) -> &'static str {
    if host == "host1" {
        "host2"
    } else {
        "host1"
    }
}

/// Move guest `vm` `count` times, alternating between the hosts from `start_on`, with
/// `migrate(round, from, to)`; judge each round as `judge` says after [`SETTLE`], hand it to
/// `on_round`, then judge the whole run. A failed move ends the run with its error; a round the
/// guest judged bad does not (the caller decides, from the rounds).
pub fn migrate_rounds(
    lab: &Lab,
    vm: &str,
    start_on: &str,
    count: u32,
    judge: Judge,
    mut migrate: impl FnMut(u32, &str, &str) -> Result<Moved>,
    mut on_round: impl FnMut(&Round),
) -> Result<RoundTrips> {
    let log = lab.console_dir().join(format!("{vm}.log"));
    let started_unix_ms = unix_ms();
    let mut rounds = Vec::new();
    let mut on = start_on.to_string();
    for number in 1..=count {
        let to = other_host(&on);
        let t0 = unix_ms();
        let wall = Instant::now();
        let moved = migrate(number, &on, to)?;
        let wall_ms = u64::try_from(wall.elapsed().as_millis()).unwrap_or(u64::MAX);
        std::thread::sleep(SETTLE);
        // The round's window closes now; reading the log (and the disk) takes a while after.
        let judged_unix_ms = unix_ms();
        let (heartbeats, check) = match judge {
            Judge::Heartbeats => (check_heartbeats(&log, vm, t0, None)?, None),
            Judge::HeartbeatsAndDisk => {
                let c = check_guest_since(lab, vm, t0)?;
                (c.heartbeats.clone(), Some(c))
            }
        };
        let round = Round {
            number,
            from: on.clone(),
            to: to.to_string(),
            started_unix_ms: t0,
            judged_unix_ms,
            wall_ms,
            moved,
            heartbeats,
            check,
        };
        on_round(&round);
        rounds.push(round);
        on = to.to_string();
    }
    let whole = check_guest_since(lab, vm, started_unix_ms)?;
    Ok(RoundTrips {
        started_unix_ms,
        rounds,
        whole,
    })
}

/// Moves with Twofold's own migration (the engine path the CLI and the app take), recorded in
/// `inv` as a job like any other; for [`migrate_rounds`].
pub fn twofold_migration<'a>(
    hosts: &'a [HostTarget],
    inv: &'a Inventory,
    vm: &'a str,
) -> impl FnMut(u32, &str, &str) -> Result<Moved> + 'a {
    move |_round, _from, to| {
        crate::vm::migrate_blocking(hosts, inv, vm, to, &NoProgress, &MigrationCancel::new())
            .map(|s| Moved::from(&s))
    }
}

/// Wait (at most `within`) until guest `vm` has sent `n` heartbeats in the last two minutes: it
/// may still be booting.
pub fn wait_heartbeats(lab: &Lab, vm: &str, n: u64, within: Duration) -> Result<()> {
    let log = lab.console_dir().join(format!("{vm}.log"));
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = check_heartbeats(&log, vm, unix_ms() - 120_000, None) {
            if r.lines >= n {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(Error::Lab(format!(
                "no heartbeat from guest '{vm}' within {} s; see {} and the guest's log on its host",
                within.as_secs(),
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The host where guest `vm` runs: exactly one host must run it.
pub fn running_on(hosts: &[HostTarget], inv: &Inventory, vm: &str) -> Result<String> {
    let list = crate::vm::list_blocking(hosts, inv)?;
    let on: Vec<&str> = list
        .vms
        .iter()
        .filter(|v| v.name == vm && v.state.is_migratable())
        .map(|v| v.host.as_str())
        .collect();
    match on.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::Lab(format!(
            "guest '{vm}' is not running on any host"
        ))),
        many => Err(Error::VmOnSeveralHosts {
            vm: vm.to_string(),
            hosts: many.join(", "),
        }),
    }
}
