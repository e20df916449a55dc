//! The engine's error type. Every message says what failed, where, and what to do next; the
//! [`Error::code`] is the stable identifier front ends branch on (never the message text).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidInput(String),

    #[error("no VM named '{name}' on any host{hint}")]
    UnknownVm { name: String, hint: String },

    #[error("no host named '{name}' in the inventory; known hosts: {known}")]
    UnknownHost { name: String, known: String },

    #[error(
        "VM '{vm}' is not running (state: {state}); start it first, or migrate only running VMs"
    )]
    VmNotRunning { vm: String, state: String },

    #[error("VM '{vm}' already runs on {host}; choose the other host as target")]
    SameHost { vm: String, host: String },

    #[error("VM '{vm}' is running on more than one host ({hosts}); two copies must never run. Stop the copy that should not run (virsh destroy on that host), then try again")]
    VmOnSeveralHosts { vm: String, hosts: String },

    #[error("{host} is unreachable: {detail}. Check that the machine is on and on the network, and that its SSH server (and, on a virtualization host, libvirt) runs")]
    HostUnreachable { host: String, detail: String },

    #[error("the SSH identity of {node} changed: its host key is now {got_fingerprint}, but {expected_fingerprint} was pinned. Nothing was sent to it. This can mean that someone is intercepting the connection. If the machine was really reinstalled (or its SSH server re-keyed), check the new fingerprint on its console (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and pin the new key; otherwise do not connect")]
    HostKeyChanged {
        node: String,
        expected_fingerprint: String,
        got_fingerprint: String,
    },

    #[error("{node} refused the login as '{user}'. Check the user name and the password or key; a key must be listed in that user's ~/.ssh/authorized_keys on {node}")]
    AuthFailed { node: String, user: String },

    #[error("SSH connection to {node}: {detail}")]
    Ssh { node: String, detail: String },

    /// A command on a node exited with a non-zero status. `output` is the tail of what it
    /// printed ([`crate::node::CommandOutput::tail`]): the reason is usually there.
    #[error("{what}{} failed (exit status {status}){}", on_node(.node, .what), printed(.output))]
    RemoteCommand {
        node: String,
        what: String,
        status: u32,
        output: Vec<String>,
    },

    #[error("libvirt on {host}: {op} failed: {detail}")]
    Libvirt {
        host: String,
        op: String,
        detail: String,
    },

    #[error(
        "migration of '{vm}' to {to} failed: {detail}. The VM keeps running on its source host"
    )]
    Migration {
        vm: String,
        to: String,
        detail: String,
    },

    #[error("inventory database {path}: {detail}")]
    Inventory { path: PathBuf, detail: String },

    #[error("node list {path}: {detail}")]
    NodesFile { path: PathBuf, detail: String },

    #[error("lab: {0}")]
    Lab(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{what} needs root; run it again with sudo")]
    NeedsRoot { what: String },

    /// A setup step failed; `cause` is the code of the error behind it, for front ends that
    /// branch on it, and `detail` already says what to do.
    #[error("setup step '{step}'{} failed: {detail}", on_node(.node, .step))]
    StepFailed {
        step: String,
        node: String,
        cause: String,
        detail: String,
    },

    #[error("setup step '{step}' on {node} ran without an error, but checking afterwards shows that its result is not there. What it did was undone where possible. Something on {node} may be reverting the change (another management tool?); check {node}, then run the setup again")]
    StepNotEffective { step: String, node: String },

    #[error("the machines are not ready, nothing was changed: {summary}. Fix what the checks report (each says how), then check again")]
    NotReady { summary: String },

    #[error("the hosts are too small for N+1 (each host alone must carry every critical VM), nothing was changed: {problems}. Add RAM or cores to the hosts, or protect fewer VMs")]
    TooSmall { problems: String },

    #[error("another setup run is in progress ({what}); wait for it to finish or cancel it")]
    Busy { what: String },

    #[error("{what} was cancelled between two steps; nothing is left half-done. Run it again to continue where it stopped")]
    Cancelled { what: String },
}

impl Error {
    /// Stable machine-readable code for front ends (the desktop app maps codes to dialogs).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "invalid_input",
            Error::UnknownVm { .. } => "unknown_vm",
            Error::UnknownHost { .. } => "unknown_host",
            Error::VmNotRunning { .. } => "vm_not_running",
            Error::SameHost { .. } => "same_host",
            Error::VmOnSeveralHosts { .. } => "vm_on_several_hosts",
            Error::HostUnreachable { .. } => "host_unreachable",
            Error::HostKeyChanged { .. } => "host_key_changed",
            Error::AuthFailed { .. } => "auth_failed",
            Error::Ssh { .. } => "ssh",
            Error::RemoteCommand { .. } => "remote_command",
            Error::Libvirt { .. } => "libvirt",
            Error::Migration { .. } => "migration_failed",
            Error::Inventory { .. } => "inventory",
            Error::NodesFile { .. } => "nodes_file",
            Error::Lab(_) => "lab",
            Error::Io { .. } => "io",
            Error::NeedsRoot { .. } => "needs_root",
            Error::StepFailed { .. } => "step_failed",
            Error::StepNotEffective { .. } => "step_not_effective",
            Error::NotReady { .. } => "not_ready",
            Error::TooSmall { .. } => "too_small",
            Error::Busy { .. } => "busy",
            Error::Cancelled { .. } => "cancelled",
        }
    }

    /// The message without the command output it quotes (see [`Error::command_output`]), for
    /// front ends that show that output on its own.
    pub fn headline(&self) -> String {
        match self {
            Error::RemoteCommand {
                node,
                what,
                status,
                output,
            } => format!(
                "{what}{} failed (exit status {status}){}",
                on_node(node, what),
                if output.is_empty() {
                    " and printed nothing"
                } else {
                    ""
                }
            ),
            e => e.to_string(),
        }
    }

    /// The last lines a failed command printed, when the error is about one.
    pub fn command_output(&self) -> &[String] {
        match self {
            Error::RemoteCommand { output, .. } => output,
            _ => &[],
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// `" on NODE"`, unless `text` already names the node (a step's title often does: "Start
/// libvirt on host2"), so that a message names it once.
pub fn on_node(node: &str, text: &str) -> String {
    let named = text
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .any(|w| w == node || w.trim_end_matches('.') == node);
    if named || node.is_empty() {
        String::new()
    } else {
        format!(" on {node}")
    }
}

fn printed(output: &[String]) -> String {
    if output.is_empty() {
        " and printed nothing".to_string()
    } else {
        format!(": {}", output.join("\n"))
    }
}

/// Attach a context sentence to I/O errors: `fs::read(p).ctx(|| format!("reading {p:?}"))?`.
pub trait IoContext<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::io(f(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(what: &str, output: &[&str]) -> Error {
        Error::RemoteCommand {
            node: "host2".into(),
            what: what.into(),
            status: 1,
            output: output.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn a_failed_command_names_its_node_once_and_says_what_it_printed() {
        let e = failed("Start libvirt on host2", &[]);
        assert_eq!(
            e.to_string(),
            "Start libvirt on host2 failed (exit status 1) and printed nothing"
        );
        assert_eq!(e.headline(), e.to_string());
        let e = failed("writing /etc/hosts", &["cat: write error", "No space left"]);
        assert_eq!(
            e.to_string(),
            "writing /etc/hosts on host2 failed (exit status 1): cat: write error\nNo space left"
        );
        assert_eq!(
            e.headline(),
            "writing /etc/hosts on host2 failed (exit status 1)"
        );
        assert_eq!(e.command_output(), ["cat: write error", "No space left"]);
        // A name that only contains the node's name is not the node.
        assert_eq!(
            on_node("host2", "Authorize host1's key on host22"),
            " on host2"
        );
        assert_eq!(on_node("stor1", "Add host1 to stor1's storage pool"), "");
        let step = Error::StepFailed {
            step: "Start libvirt on host2".into(),
            node: "host2".into(),
            cause: "remote_command".into(),
            detail: "x".into(),
        };
        assert_eq!(
            step.to_string(),
            "setup step 'Start libvirt on host2' failed: x"
        );
    }
}
