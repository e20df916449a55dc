//! What the GlusterFS volume says about its copies: which bricks are online (`gluster volume
//! status --xml`), which answer a client and how many entries wait for a heal or are in
//! split-brain (`gluster volume heal ... info summary --xml`), and the volume's own settings
//! (`gluster volume info --xml`: its bricks and `network.ping-timeout`). The commands run on a
//! storage node, each under its own time limit; the `parse_*` and [`judge`] functions turn their
//! answers into one finding and are tested without a machine, on answers captured from the lab.
//!
//! `volume status` takes a cluster-wide lock in glusterd: while a peer's link is cut, glusterd
//! keeps waiting for that peer and answers "Another transaction is in progress" until the peer is
//! back. The heal summary is a plain client of the bricks and takes no lock, so it still says
//! which bricks answer; the judgement uses whichever of the two answered.

use super::layout::{GLUSTER_DEFAULT_PING_TIMEOUT_S, VOLUME};
use crate::rules::RuleState;

/// How long each GlusterFS command may take on the node. A brick whose link was cut makes the
/// heal summary wait for its connection attempt; past this the summary is reported as not read.
pub const COMMAND_LIMIT_S: u32 = 4;

/// `timeout` exits 124 when it stopped the command, 137 when it had to kill it.
fn limited(cmd: &str) -> String {
    format!("timeout -k 1 {COMMAND_LIMIT_S} {cmd}")
}

/// The volume's settings and bricks (glusterd answers from its own state: no lock, no peer).
pub fn info_command() -> String {
    limited(&format!("gluster --mode=script volume info {VOLUME} --xml"))
}

/// Which bricks glusterd knows to be online.
pub fn status_command() -> String {
    limited(&format!(
        "gluster --mode=script volume status {VOLUME} --xml"
    ))
}

/// Pending heals and split-brain entries per brick, from a client that connects to every brick.
pub fn heal_command() -> String {
    limited(&format!(
        "gluster --mode=script volume heal {VOLUME} info summary --xml"
    ))
}

/// One brick of the volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brick {
    /// The node it is on, as the volume names it (Twofold creates bricks by node name).
    pub node: String,
    pub path: String,
    pub arbiter: bool,
}

/// The volume's settings that the status needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    pub started: bool,
    pub bricks: Vec<Brick>,
    /// `network.ping-timeout`, or GlusterFS's default when the volume does not set it.
    pub ping_timeout_s: u32,
}

/// One brick as `volume status` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickOnline {
    pub node: String,
    pub path: String,
    pub online: bool,
}

/// One brick as the heal summary sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrickHeal {
    pub node: String,
    pub path: String,
    /// The summary's client reached the brick.
    pub connected: bool,
    /// Entries this brick holds that another copy still needs (0 when not connected).
    pub pending: u64,
    pub split_brain: u64,
    /// GlusterFS's own words when the brick was not reached.
    pub status: String,
}

/// Everything one look at the volume found; each part is `Err(reason)` when it was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeLook {
    /// The node the commands ran on.
    pub asked: String,
    pub info: Result<VolumeInfo, String>,
    pub status: Result<Vec<BrickOnline>, String>,
    pub heal: Result<Vec<BrickHeal>, String>,
}

/// What the volume's state means for "every VM disk has two copies".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFinding {
    pub state: RuleState,
    /// One plain sentence.
    pub detail: String,
    /// Nodes whose brick is offline or does not answer.
    pub offline: Vec<String>,
    /// Nodes whose brick glusterd itself reports offline; `None` when glusterd was not read.
    /// Only this says something about a node: a client that fails to reach a brick may be
    /// looking from a node whose own network just came back.
    pub glusterd_offline: Option<Vec<String>>,
    /// Entries still to heal (the largest count any brick holds), when known.
    pub heal_left: Option<u64>,
    pub ping_timeout_s: Option<u32>,
}

fn doc(xml: &str) -> Result<roxmltree::Document<'_>, String> {
    if xml.trim().is_empty() {
        return Err("it printed nothing".into());
    }
    roxmltree::Document::parse(xml).map_err(|e| format!("its answer is not XML ({e})"))
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

fn text_of(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name).map(|c| c.text().unwrap_or("").trim().to_string())
}

/// glusterd's verdict: `opRet` 0, or its error string.
fn op_ok(root: roxmltree::Node<'_, '_>) -> Result<(), String> {
    let ret = text_of(root, "opRet").ok_or("its answer has no opRet")?;
    if ret == "0" {
        return Ok(());
    }
    let why = text_of(root, "opErrstr")
        .filter(|s| !s.is_empty())
        .or_else(|| text_of(root, "output"))
        .unwrap_or_else(|| format!("opRet {ret}"));
    Err(format!("GlusterFS answered: {why}"))
}

/// `host:/path` split at the first colon.
fn split_brick(name: &str) -> Option<(String, String)> {
    let (host, path) = name.trim().split_once(':')?;
    (!host.is_empty() && path.starts_with('/')).then(|| (host.to_string(), path.to_string()))
}

fn count(n: roxmltree::Node<'_, '_>, name: &str) -> Result<u64, String> {
    match text_of(n, name) {
        None => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} is '{v}', not a number")),
    }
}

/// Parse `gluster volume info VOL --xml`.
pub fn parse_volume_info(xml: &str) -> Result<VolumeInfo, String> {
    let d = doc(xml)?;
    let root = d.root_element();
    op_ok(root)?;
    let vol = root
        .descendants()
        .find(|n| n.has_tag_name("volume"))
        .ok_or("its answer names no volume")?;
    let started = text_of(vol, "statusStr").as_deref() == Some("Started");
    let mut bricks = Vec::new();
    if let Some(list) = child(vol, "bricks") {
        for b in list.children().filter(|c| c.has_tag_name("brick")) {
            let name = text_of(b, "name").ok_or("a brick has no name")?;
            let (node, path) =
                split_brick(&name).ok_or_else(|| format!("brick '{name}' is not host:/path"))?;
            bricks.push(Brick {
                node,
                path,
                arbiter: text_of(b, "isArbiter").as_deref() == Some("1"),
            });
        }
    }
    let ping_timeout_s = match vol
        .descendants()
        .filter(|n| n.has_tag_name("option"))
        .find(|o| text_of(*o, "name").as_deref() == Some("network.ping-timeout"))
        .and_then(|o| text_of(o, "value"))
    {
        None => GLUSTER_DEFAULT_PING_TIMEOUT_S,
        Some(v) => v
            .parse()
            .map_err(|_| format!("network.ping-timeout is '{v}', not a number of seconds"))?,
    };
    Ok(VolumeInfo {
        started,
        bricks,
        ping_timeout_s,
    })
}

/// Parse `gluster volume status VOL --xml`: the bricks (not the self-heal daemons).
pub fn parse_volume_status(xml: &str) -> Result<Vec<BrickOnline>, String> {
    let d = doc(xml)?;
    let root = d.root_element();
    op_ok(root)?;
    let vol = root
        .descendants()
        .find(|n| n.has_tag_name("volume"))
        .ok_or("its answer names no volume")?;
    let mut out = Vec::new();
    for n in vol.children().filter(|c| c.has_tag_name("node")) {
        let host = text_of(n, "hostname").unwrap_or_default();
        let path = text_of(n, "path").unwrap_or_default();
        // Daemons (self-heal, quota...) are listed as nodes too, with a name instead of a host
        // and a host instead of a path.
        if !path.starts_with('/') {
            continue;
        }
        out.push(BrickOnline {
            node: host,
            path,
            online: text_of(n, "status").as_deref() == Some("1"),
        });
    }
    if out.is_empty() {
        return Err("its answer lists no brick".into());
    }
    Ok(out)
}

/// Parse `gluster volume heal VOL info summary --xml`.
pub fn parse_heal_summary(xml: &str) -> Result<Vec<BrickHeal>, String> {
    let d = doc(xml)?;
    let root = d.root_element();
    op_ok(root)?;
    let mut out = Vec::new();
    for b in root.descendants().filter(|n| n.has_tag_name("brick")) {
        let name = text_of(b, "name").ok_or("a brick has no name")?;
        let (node, path) =
            split_brick(&name).ok_or_else(|| format!("brick '{name}' is not host:/path"))?;
        let status = text_of(b, "status").unwrap_or_default();
        let connected = status == "Connected";
        out.push(BrickHeal {
            node,
            path,
            connected,
            pending: if connected {
                count(b, "numberOfEntriesInHealPending")?
                    .max(count(b, "numberOfEntriesPossiblyHealing")?)
            } else {
                0
            },
            split_brain: if connected {
                count(b, "numberOfEntriesInSplitBrain")?
            } else {
                0
            },
            status,
        });
    }
    if out.is_empty() {
        return Err("its answer lists no brick".into());
    }
    Ok(out)
}

fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".into()
    } else {
        format!("{n} entries")
    }
}

/// What the volume's answers mean for the VM disks' copies. Only what was read counts: a part
/// that was not read is named as such, never taken as fine.
pub fn judge(look: &VolumeLook) -> VolumeFinding {
    let info = look.info.as_ref().ok();
    let ping_timeout_s = info.map(|i| i.ping_timeout_s);
    let glusterd_offline: Option<Vec<String>> = look.status.as_ref().ok().map(|s| {
        s.iter()
            .filter(|b| !b.online)
            .map(|b| b.node.clone())
            .collect()
    });
    let finding = |state, detail: String, offline: Vec<String>, heal_left| VolumeFinding {
        state,
        detail,
        offline,
        glusterd_offline: glusterd_offline.clone(),
        heal_left,
        ping_timeout_s,
    };
    if let Err(e) = &look.info {
        if e.contains("does not exist") {
            return finding(
                RuleState::Missing,
                format!("The replicated volume {VOLUME} does not exist yet: run the setup."),
                Vec::new(),
                None,
            );
        }
    }
    if let Some(i) = info {
        if !i.started {
            return finding(
                RuleState::Warn,
                format!("The volume {VOLUME} exists but is not started, so no VM disk can be reached; run the setup again."),
                Vec::new(),
                None,
            );
        }
    }
    let (status, heal) = (look.status.as_ref().ok(), look.heal.as_ref().ok());
    if status.is_none() && heal.is_none() {
        let why = [look.status.as_ref().err(), look.heal.as_ref().err()]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        return finding(
            RuleState::Warn,
            format!(
                "Whether every VM disk has two copies could not be checked: {} did not say which bricks answer ({why}).",
                look.asked
            ),
            Vec::new(),
            None,
        );
    }
    // A brick counts as offline when either source says so.
    let mut offline: Vec<(String, String)> = Vec::new();
    let mut add = |node: &str, path: &str| {
        if !offline.iter().any(|(n, p)| n == node && p == path) {
            offline.push((node.to_string(), path.to_string()));
        }
    };
    for b in status.into_iter().flatten().filter(|b| !b.online) {
        add(&b.node, &b.path);
    }
    for b in heal.into_iter().flatten().filter(|b| !b.connected) {
        add(&b.node, &b.path);
    }
    // Bricks the volume has but neither answer listed are not known to be online.
    if let (Some(i), Some(s)) = (info, status) {
        for b in &i.bricks {
            if !s.iter().any(|x| x.node == b.node && x.path == b.path) {
                add(&b.node, &b.path);
            }
        }
    }
    let is_arbiter = |node: &str, path: &str| {
        info.and_then(|i| i.bricks.iter().find(|b| b.node == node && b.path == path))
            .map_or(path.contains("arbiter"), |b| b.arbiter)
    };
    let offline_nodes: Vec<String> = offline.iter().map(|(n, _)| n.clone()).collect();
    let heal_left = heal.map(|h| h.iter().map(|b| b.pending).max().unwrap_or(0));
    let split = heal.map_or(0, |h| h.iter().map(|b| b.split_brain).max().unwrap_or(0));

    if split > 0 {
        return finding(
            RuleState::Warn,
            format!(
                "{} of the store {} in split-brain: the copies differ and GlusterFS cannot tell which is right. Run `gluster volume heal {VOLUME} info split-brain` on a storage node and resolve each one.",
                entries(split),
                if split == 1 { "is" } else { "are" }
            ),
            offline_nodes,
            heal_left,
        );
    }
    if !offline.is_empty() {
        let data: Vec<&str> = offline
            .iter()
            .filter(|(n, p)| !is_arbiter(n, p))
            .map(|(n, _)| n.as_str())
            .collect();
        let arbiters: Vec<&str> = offline
            .iter()
            .filter(|(n, p)| is_arbiter(n, p))
            .map(|(n, _)| n.as_str())
            .collect();
        let mut parts = Vec::new();
        if !data.is_empty() {
            parts.push(format!(
                "the copy on {} is offline: every VM disk has one copy until it is back and has caught up",
                data.join(" and ")
            ));
        }
        if !arbiters.is_empty() {
            parts.push(format!(
                "the arbiter on {} is offline: writes go on, but one more failure would stop them",
                arbiters.join(" and ")
            ));
        }
        let mut detail = capitalized(&parts.join("; and "));
        if let Some(n) = heal_left.filter(|n| *n > 0) {
            detail.push_str(&format!(
                "; {} will need a heal when it is back",
                entries(n)
            ));
        }
        detail.push('.');
        return finding(RuleState::Warn, detail, offline_nodes, heal_left);
    }
    match heal_left {
        Some(n) if n > 0 => finding(
            RuleState::Warn,
            format!(
                "A heal is running: {} left to copy before every VM disk has two up-to-date copies again.",
                entries(n)
            ),
            offline_nodes,
            heal_left,
        ),
        Some(_) => {
            let bricks = heal.map_or(0, Vec::len);
            finding(
                RuleState::Ok,
                format!("All {bricks} bricks answer and nothing waits for a heal: every VM disk has two copies."),
                offline_nodes,
                heal_left,
            )
        }
        None => finding(
            RuleState::Warn,
            format!(
                "Every brick is online, but whether a heal is pending could not be read ({}).",
                look.heal.as_ref().err().map_or("", String::as_str)
            ),
            offline_nodes,
            heal_left,
        ),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// What a command's run means for its parser: its output, or why there is none.
pub fn answer<'a>(status: u32, stdout: &'a str, stderr: &str) -> Result<&'a str, String> {
    match status {
        124 | 137 => Err(format!(
            "GlusterFS did not answer within {COMMAND_LIMIT_S} s"
        )),
        // glusterd's refusals still come as XML on stdout, with a non-zero exit status.
        _ if stdout.trim_start().starts_with("<?xml") => Ok(stdout),
        0 => Ok(stdout),
        s => {
            let text = if stderr.trim().is_empty() {
                stdout.trim()
            } else {
                stderr.trim()
            };
            Err(format!("gluster failed (exit status {s}): {text}"))
        }
    }
}

#[cfg(test)]
mod tests;
