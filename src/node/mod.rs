//! Reaching a machine: the SSH connection the provisioning engine and the supervisor use to run
//! commands on a node, with host-key pinning, Twofold's own ed25519 keys and typed errors that
//! say what to check. Later: the command runner and the preflight probes built on top of it.

pub mod ssh;

#[cfg(test)]
pub(crate) mod test_sshd;

pub use ssh::{
    fingerprint_of, generate_keypair, install_key, scan_host_key, Auth, CommandOutput,
    HostKeyPolicy, ScannedKey, Secret, Session, Target,
};
