//! The checks between nodes: does each node reach every other one directly (and how fast), and
//! does it know the others by name.

use std::collections::HashMap;
use std::net::IpAddr;

use super::{remote, shell_quote, CheckId, CheckResult, Judgement, PreflightOptions};
use crate::node::Session;
use crate::nodes::NodeSpec;

/// From the node, open a TCP connection to `$1:$2` three times with bash's /dev/tcp (bash is on
/// every Debian system; no nc needed), printing the clock before and after each. `$EPOCHREALTIME`
/// (bash 5) reads the clock without starting a process, so the times are the connection's, not a
/// fork's. A TCP connect takes one round trip. Exits 3 if a connection fails.
pub(super) const REACH_SCRIPT: &str = "for i in 1 2 3; do a=${EPOCHREALTIME:-$(date +%s.%N)}; : <\"/dev/tcp/$1/$2\" || exit 3; b=${EPOCHREALTIME:-$(date +%s.%N)}; echo \"$a $b\"; done";

pub(super) fn reach_command(address: &str, port: u16, timeout_secs: u64) -> String {
    format!(
        "timeout {timeout_secs} bash -c {} twofold-reach {} {port}",
        shell_quote(REACH_SCRIPT),
        shell_quote(address)
    )
}

/// The round-trip times (seconds) of the connections in the reach script's output. The clock
/// may print a decimal comma in some locales.
pub(super) fn parse_reach(text: &str) -> Vec<f64> {
    let secs = |s: &str| s.replace(',', ".").parse::<f64>().ok();
    text.lines()
        .filter_map(|l| {
            let (a, b) = l.trim().split_once(' ')?;
            let d = secs(b)? - secs(a)?;
            (d >= 0.0).then_some(d)
        })
        .collect()
}

pub(super) fn judge_reach(
    node: &str,
    peer: &NodeSpec,
    status: u32,
    rtts: &[f64],
    stderr: &str,
    opts: &PreflightOptions,
) -> Judgement {
    let endpoint = if peer.address.contains(':') {
        format!("[{}]:{}", peer.address, peer.ssh_port)
    } else {
        format!("{}:{}", peer.address, peer.ssh_port)
    };
    let why = format!("{node} must reach {} directly: storage replication, live migration and failover go between the nodes, not through this computer.", peer.name);
    if let Some(best) = rtts.iter().copied().reduce(f64::min) {
        let ms = best * 1000.0;
        let found = format!("{} reaches {endpoint}; round trip {ms:.2} ms", node);
        return if ms > opts.latency_warn_ms {
            Judgement::warn(
                found,
                format!("Storage replication waits for both copies on every disk write, and live migration copies a VM's memory over this link: both want a local network, well under {} ms (a LAN is usually under 1 ms).", opts.latency_warn_ms),
                format!("Connect {node} and {} through the same local network (same switch, cable rather than Wi-Fi), and check for an overloaded link.", peer.name),
            )
        } else {
            Judgement::pass(found, "The nodes are on a fast local network.")
        };
    }
    let detail = stderr
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| l.rsplit(": ").next().unwrap_or(l).trim().to_string())
        .unwrap_or_default();
    match status {
        124 => Judgement::fail(
            format!("no answer from {endpoint} within {} s", opts.connect_timeout_secs),
            why,
            format!("Check that {} is on, that {} is its address as seen from {node}, and that no firewall on the way drops the traffic.", peer.name, peer.address),
        ),
        3 => Judgement::fail(
            format!("{node} cannot connect to {endpoint}: {detail}"),
            why,
            if detail.contains("refused") {
                format!("Check that the SSH server of {} runs and listens on port {}, and that no firewall rejects the connection.", peer.name, peer.ssh_port)
            } else {
                format!("Check {}'s address ({}), the network cables, and the routes between {node} and {}.", peer.name, peer.address, peer.name)
            },
        ),
        127 => Judgement::fail(
            format!("the connection test could not start on {node}: {detail}"),
            "Twofold tests connections with bash and timeout, which every Debian system has.",
            format!("Install Debian 12 on {node}."),
        ),
        s => Judgement::unable(node, "whether the other node is reachable", &format!("exit status {s}: {detail}")),
    }
}

pub(super) fn resolve_command(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| shell_quote(n)).collect();
    format!(
        "for n in {}; do timeout 5 getent hosts \"$n\" | while read -r ip rest; do printf '%s %s\\n' \"$n\" \"$ip\"; done; done; exit 0",
        quoted.join(" ")
    )
}

/// Addresses per name from the resolve command's `NAME ADDRESS` lines.
pub(super) fn parse_resolve(text: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for line in text.lines() {
        if let Some((name, addr)) = line.trim().split_once(' ') {
            map.entry(name.to_string())
                .or_default()
                .push(addr.trim().to_string());
        }
    }
    map
}

pub(super) fn judge_resolve(node: &str, peer: &NodeSpec, addrs: &[String]) -> Judgement {
    let why = format!("The storage nodes and hosts name each other (GlusterFS peers, migration targets); {node} must find {} by name.", peer.name);
    let expected: Option<IpAddr> = peer.address.parse().ok();
    let hosts_line = match expected {
        Some(ip) => format!("'{ip} {}'", peer.name),
        None => format!("'ADDRESS {}' (with {}'s IP address)", peer.name, peer.name),
    };
    if addrs.is_empty() {
        return Judgement::warn(
            format!("{node} cannot resolve the name '{}'", peer.name),
            format!("{why} Setup can add the names to /etc/hosts."),
            format!("Setup writes the line {hosts_line} to /etc/hosts on {node}; or add {} to your DNS.", peer.name),
        );
    }
    let found_ips: Vec<IpAddr> = addrs.iter().filter_map(|a| a.parse().ok()).collect();
    match expected {
        Some(ip) if !found_ips.contains(&ip) => Judgement::warn(
            format!("on {node}, '{}' resolves to {}, but the node list gives {ip}", peer.name, addrs.join(", ")),
            format!("{why} A name that leads to another address sends storage and migration traffic to the wrong place."),
            format!("Correct the line for {} in /etc/hosts on {node} to {hosts_line} (setup can write it), or fix the name in your DNS.", peer.name),
        ),
        _ => Judgement::pass(
            format!("on {node}, '{}' resolves to {}", peer.name, addrs.join(", ")),
            "The nodes know each other by name.",
        ),
    }
}

pub(super) async fn peer_checks(
    node: &NodeSpec,
    s: &Session,
    peers: &[&NodeSpec],
    opts: &PreflightOptions,
) -> Vec<CheckResult> {
    let mut results = Vec::new();
    if peers.is_empty() {
        return results;
    }
    for peer in peers {
        let j = match remote(
            s,
            &reach_command(&peer.address, peer.ssh_port, opts.connect_timeout_secs),
            opts,
        )
        .await
        {
            Err(e) => Judgement::unable(
                &node.name,
                &format!("whether {} is reachable", peer.name),
                &e,
            ),
            Ok(out) => judge_reach(
                &node.name,
                peer,
                out.status,
                &parse_reach(&out.stdout_text()),
                &out.stderr_text(),
                opts,
            ),
        };
        results.push(j.into_result(&node.name, CheckId::Reach, Some(&peer.name)));
    }
    let names: Vec<&str> = peers.iter().map(|p| p.name.as_str()).collect();
    match remote(s, &resolve_command(&names), opts).await {
        Err(e) => {
            for peer in peers {
                let j = Judgement::unable(&node.name, "name resolution", &e);
                results.push(j.into_result(&node.name, CheckId::Resolve, Some(&peer.name)));
            }
        }
        Ok(out) => {
            let map = parse_resolve(&out.stdout_text());
            for peer in peers {
                let addrs = map.get(&peer.name).map(Vec::as_slice).unwrap_or(&[]);
                let j = judge_resolve(&node.name, peer, addrs);
                results.push(j.into_result(&node.name, CheckId::Resolve, Some(&peer.name)));
            }
        }
    }
    results
}
