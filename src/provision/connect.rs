//! Opening SSH sessions to every node of a node list for the setup: Twofold's own key when the
//! node already trusts it, else the password the admin gave for first contact; host keys pinned
//! from the node list, or accepted on first contact only when the admin said so.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::node::{generate_keypair, Auth, HostKeyPolicy, Secret, Session, Target};
use crate::nodes::{NodeList, NodeSpec};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const KEY_NAME: &str = "twofold_ed25519";

/// Twofold's own key pair, made on first use: its private key path and public key line.
pub async fn ensure_twofold_key(dir: &Path) -> Result<(PathBuf, String)> {
    let private = dir.join(KEY_NAME);
    let public = dir.join(format!("{KEY_NAME}.pub"));
    if private.exists() && public.exists() {
        let line = std::fs::read_to_string(&public)
            .map_err(|e| Error::io(format!("reading {}", public.display()), e))?;
        return Ok((private, line.trim().to_string()));
    }
    generate_keypair(dir, KEY_NAME).await
}

/// Where Twofold keeps its key pair: beside the inventory.
pub fn key_dir(inventory: &Path) -> PathBuf {
    inventory
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.join("keys"))
        .unwrap_or_else(|| PathBuf::from("keys"))
}

/// How the setup may log in.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Twofold's own private key (tried first).
    pub twofold_key: PathBuf,
    /// root's password for machines that do not trust Twofold's key yet.
    pub password: Option<Secret>,
    /// A password for one machine (by node name), instead of `password`.
    pub node_passwords: std::collections::BTreeMap<String, Secret>,
    /// Accept (and report) host keys of nodes whose key the node list does not pin.
    pub trust_first_contact: bool,
}

/// One session per node, in node-list order, with each node's host key as pinned from now on.
pub async fn connect_all(
    list: &NodeList,
    creds: &Credentials,
) -> Result<Vec<(NodeSpec, std::sync::Arc<Session>)>> {
    list.validate().map_err(Error::InvalidInput)?;
    let mut out = Vec::new();
    for n in &list.nodes {
        let session = connect_one(n, creds).await?;
        let mut pinned = n.clone();
        pinned.host_key = Some(session.host_key().to_string());
        out.push((pinned, std::sync::Arc::new(session)));
    }
    Ok(out)
}

async fn connect_one(n: &NodeSpec, creds: &Credentials) -> Result<Session> {
    let policy = HostKeyPolicy::for_node(n);
    if matches!(policy, HostKeyPolicy::FirstContact) && !creds.trust_first_contact {
        return Err(Error::InvalidInput(format!(
            "the node list pins no host key for {}: check its fingerprint and add host_key to the list, or accept it on first contact (--trust-first-contact)",
            n.name
        )));
    }
    let target = Target::from(n);
    let mut keys = vec![creds.twofold_key.clone()];
    if let Some(k) = &n.key {
        keys.push(k.clone());
    }
    let mut last = None;
    for k in keys.iter().filter(|k| k.exists()) {
        match Session::connect(&target, &Auth::KeyFile(k.clone()), &policy, CONNECT_TIMEOUT).await {
            Ok(s) => return Ok(s),
            Err(e @ Error::AuthFailed { .. }) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    match creds
        .node_passwords
        .get(&n.name)
        .or(creds.password.as_ref())
    {
        Some(p) => {
            Session::connect(
                &target,
                &Auth::Password(p.clone()),
                &policy,
                CONNECT_TIMEOUT,
            )
            .await
        }
        None => Err(last.unwrap_or_else(|| Error::AuthFailed {
            node: n.name.clone(),
            user: n.user.clone(),
        })),
    }
}

/// After a successful setup: the nodes in the inventory, reached with Twofold's key, their host
/// keys pinned.
pub fn record_nodes(inv: &Inventory, nodes: &[NodeSpec], twofold_key: &Path) -> Result<()> {
    for n in nodes {
        let mut n = n.clone();
        n.key = Some(twofold_key.to_path_buf());
        inv.upsert_node(&n)?;
    }
    inv.add_event(
        crate::inventory::Severity::Info,
        "setup",
        &format!(
            "platform set up: {}",
            nodes
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

/// The VMs to protect, for N+1 sizing: a TOML file of `[[vm]]` tables (name, vcpus, ram_mib,
/// disk_gib, priority, critical).
pub fn load_protected_vms(path: &Path) -> Result<Vec<crate::provision::sizing::VmSpec>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        #[serde(default, rename = "vm")]
        vms: Vec<crate::provision::sizing::VmSpec>,
    }
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::InvalidInput(format!("cannot read the VM list {} ({e})", path.display()))
    })?;
    let f: File = toml::from_str(&text).map_err(|e| {
        Error::InvalidInput(format!(
            "the VM list {} is not valid: {}. Each VM is a [[vm]] table with name, vcpus, ram_mib, disk_gib, and optionally priority and critical",
            path.display(),
            e.message()
        ))
    })?;
    Ok(f.vms)
}
