//! The node's clock against this computer's, and whether a time service keeps it right.

use std::time::{SystemTime, UNIX_EPOCH};

use super::{first_line, remote, Judgement, NodeFacts, PreflightOptions};
use crate::node::Session;
use crate::nodes::NodeSpec;

/// The node's clock minus ours in seconds, from one sample: our clock before and after the
/// command (nanoseconds since the epoch) and the node's `date +%s%N` in between. The node read
/// its clock about half-way through the round trip. Returns (offset, round trip).
pub(super) fn clock_offset(
    local_before_ns: i128,
    remote_ns: i128,
    local_after_ns: i128,
) -> (f64, f64) {
    let mid = local_before_ns + (local_after_ns - local_before_ns) / 2;
    (
        (remote_ns - mid) as f64 / 1e9,
        (local_after_ns - local_before_ns) as f64 / 1e9,
    )
}

pub(super) fn judge_clock(
    offset_secs: f64,
    rtt_secs: f64,
    synchronized: Option<bool>,
    opts: &PreflightOptions,
) -> Judgement {
    let abs = offset_secs.abs();
    let direction = if offset_secs >= 0.0 {
        "ahead of"
    } else {
        "behind"
    };
    let found = format!(
        "{abs:.3} s {direction} this computer's clock (measured to ±{:.3} s){}",
        rtt_secs / 2.0,
        match synchronized {
            Some(true) => "; time synchronization is on",
            Some(false) => "; time synchronization is off",
            None => "",
        }
    );
    let why = "Nodes must agree on the time: storage replication, the failover's decisions and leases, the backup schedule and the offsite storage's signed requests all compare times between machines.";
    let fix = "Turn on time synchronization on this node: as root, 'apt-get install -y chrony' (or systemd-timesyncd), then 'timedatectl' should say 'System clock synchronized: yes'. If this computer's own clock is the wrong one, fix it here instead.";
    if abs > opts.clock_fail_secs {
        Judgement::fail(
            found,
            format!(
                "{why} More than {} s apart is too far.",
                opts.clock_fail_secs
            ),
            fix,
        )
    } else if abs > opts.clock_warn_secs {
        Judgement::warn(
            found,
            format!(
                "{why} Over {} s apart already shows in logs and schedules, and it grows.",
                opts.clock_warn_secs
            ),
            fix,
        )
    } else if synchronized == Some(false) {
        Judgement::warn(
            found,
            "The clock is right now, but nothing keeps it right: clocks drift by seconds a week.",
            fix,
        )
    } else {
        Judgement::pass(found, "The node's clock agrees with this computer's.")
    }
}

pub(super) fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

pub(super) async fn probe_clock(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
    facts: &mut NodeFacts,
) -> Judgement {
    // Three samples, keeping the one with the shortest round trip: the least uncertain.
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..3 {
        let before = now_ns();
        let out = match remote(s, "date +%s%N", opts).await {
            Err(e) => return Judgement::unable(&node.name, "the clock", &e),
            Ok(out) => out,
        };
        let after = now_ns();
        let Ok(remote_ns) = out.stdout_text().trim().parse::<i128>() else {
            return Judgement::unable(
                &node.name,
                "the clock",
                &format!(
                    "'date +%s%N' answered '{}'",
                    first_line(&out.stdout_text(), &out.stderr_text())
                ),
            );
        };
        let sample = clock_offset(before, remote_ns, after);
        if best.is_none_or(|b| sample.1 < b.1) {
            best = Some(sample);
        }
    }
    let Some((offset, rtt)) = best else {
        unreachable!("three samples were taken")
    };
    facts.clock_offset_ms = Some(offset * 1000.0);
    // Whether a time service keeps the clock synchronized (any of them: timedated reads the
    // kernel's state). Unknown without systemd.
    let synchronized = match remote(
        s,
        "timedatectl show -p NTPSynchronized --value 2>/dev/null",
        opts,
    )
    .await
    {
        Ok(out) => match out.stdout_text().trim() {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        },
        Err(_) => None,
    };
    judge_clock(offset, rtt, synchronized, opts)
}
