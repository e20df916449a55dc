//! The Debian packages a node of each role needs, as dpkg reports them.

use std::collections::HashSet;

use super::{noun, remote, Judgement, PreflightOptions};
use crate::node::Session;
use crate::nodes::{NodeSpec, Role};

pub(super) fn valid_package_name(p: &str) -> bool {
    // Debian policy 5.6.1: lowercase letters, digits, + - .; at least two characters, starting
    // with a letter or digit.
    p.len() >= 2
        && p.len() <= 128
        && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && p.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c))
}

pub(super) fn packages_command(packages: &[String]) -> String {
    // ${db:Status-Abbrev} is three letters: wanted, current state, error; "ii " is installed.
    // Unknown packages print nothing on stdout (and a complaint on stderr, dropped).
    format!(
        "command -v dpkg-query >/dev/null 2>&1 || {{ echo no-dpkg; exit 0; }}; dpkg-query -W -f='${{Package}} ${{db:Status-Abbrev}}\\n' {} 2>/dev/null; exit 0",
        packages.join(" ")
    )
}

/// Which of `wanted` are installed, according to `dpkg-query -W -f='${Package}
/// ${db:Status-Abbrev}\n'` output. Returns the missing ones, in the order wanted; `None` when the
/// node has no dpkg.
pub fn parse_dpkg_status(text: &str, wanted: &[String]) -> Option<Vec<String>> {
    if text.lines().any(|l| l.trim() == "no-dpkg") {
        return None;
    }
    let installed: HashSet<&str> = text
        .lines()
        .filter_map(|l| {
            let (name, abbrev) = l.split_once(' ')?;
            // The second letter is the current state: 'i' installed (not half-configured,
            // unpacked only, or config files only).
            (abbrev.chars().nth(1) == Some('i')).then_some(name.split(':').next().unwrap_or(name))
        })
        .collect();
    Some(
        wanted
            .iter()
            .filter(|p| !installed.contains(p.as_str()))
            .cloned()
            .collect(),
    )
}

pub(super) fn judge_packages(
    node: &str,
    role: Role,
    wanted: &[String],
    missing: Option<&[String]>,
    no_install: bool,
) -> Judgement {
    let Some(missing) = missing else {
        return Judgement::fail(
            "no dpkg on this system",
            "Twofold installs and checks its parts with Debian's package tools.",
            "Install Debian 12 (bookworm) on this machine.",
        );
    };
    if missing.is_empty() {
        return Judgement::pass(
            if wanted.is_empty() {
                "no packages required".to_string()
            } else {
                format!("installed: {}", wanted.join(", "))
            },
            format!("Everything a {} needs is installed.", noun(role)),
        );
    }
    let found = format!("not installed: {}", missing.join(", "));
    let command = format!("apt-get install -y {}", missing.join(" "));
    let why = format!("A {} needs these packages.", noun(role));
    if no_install {
        Judgement::fail(
            found,
            format!("{why} Setup was told not to install packages, so they must be there before it starts."),
            format!("Run as root on {node}: apt-get update && {command}"),
        )
    } else {
        Judgement::warn(
            found,
            format!("{why} Setup installs them; this needs the node to reach its package mirror."),
            command,
        )
    }
}

pub(super) async fn probe_packages(
    node: &NodeSpec,
    s: &Session,
    opts: &PreflightOptions,
) -> Judgement {
    let wanted = opts.packages(node.role);
    if wanted.is_empty() {
        return judge_packages(&node.name, node.role, wanted, Some(&[]), opts.no_install);
    }
    match remote(s, &packages_command(wanted), opts).await {
        Err(e) => Judgement::unable(&node.name, "the installed packages", &e),
        Ok(out) => {
            let missing = parse_dpkg_status(&out.stdout_text(), wanted);
            judge_packages(
                &node.name,
                node.role,
                wanted,
                missing.as_deref(),
                opts.no_install,
            )
        }
    }
}
