//! The four-node lab: host1, host2, stor1 and stor2 on one Linux machine, each in its own
//! network, mount and UTS namespaces, joined by a private bridge, each with its own sshd, so that
//! Twofold reaches lab nodes exactly as it reaches real machines. Hosts run libvirtd, virtlogd and
//! virtlockd with their own state and host UUID; storage nodes run glusterd with their own state.
//! The platform on top (the replicated store, its mounts, disk leases, host trust) is made by
//! Twofold's own provisioning engine, as on real machines; `--bare` stops before it.
//!
//! `up` is idempotent: a lab whose nodes are all alive is kept (and completed), anything less
//! (a crash half-way, a node killed) is torn down and built again. `down` removes every process,
//! namespace, veth and bridge the lab made, also after a crash half-way through `up`.

pub mod checker;
mod cmd;
pub mod console;
mod demo;
pub mod guest;
mod node;
pub mod rounds;
mod verify;

pub use verify::{check_guest, check_guest_since, heartbeat_problems, GuestCheck, MAX_GAP_MS};

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::hypervisor::HostTarget;
use crate::inventory::Inventory;
use crate::nodes::{NodeList, NodeSpec, Role};
use crate::progress::Progress;

/// Names of everything the lab creates in the root namespace start with these.
pub const NETNS_PREFIX: &str = "tf-";
pub const VETH_PREFIX: &str = "tfv-";
pub const BRIDGE: &str = "tfbr0";
/// The lab's private network. The bridge (root namespace) has .1, the nodes .11 and up.
pub const SUBNET: [u8; 3] = [10, 251, 77];
pub const PREFIX_LEN: u8 = 24;
/// The console server that collects lab guests' serial output listens here (on the bridge).
pub const CONSOLE_PORT: u16 = 7070;
/// The replicated VM store: GlusterFS volume name and where hosts mount it.
pub use crate::storage::layout::{STORE as STORE_MOUNT, VOLUME};
/// The demo guest the lab boots.
pub const DEMO_VM: &str = "demo";

/// One lab node's fixed identity.
#[derive(Debug, Clone, Copy)]
pub struct LabNode {
    pub name: &'static str,
    pub role: Role,
    pub octet: u8,
}

pub const NODES: [LabNode; 4] = [
    LabNode {
        name: "host1",
        role: Role::Host,
        octet: 11,
    },
    LabNode {
        name: "host2",
        role: Role::Host,
        octet: 12,
    },
    LabNode {
        name: "stor1",
        role: Role::Storage,
        octet: 21,
    },
    LabNode {
        name: "stor2",
        role: Role::Storage,
        octet: 22,
    },
];

impl LabNode {
    pub fn ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], self.octet)
    }
    pub fn netns(&self) -> String {
        format!("{NETNS_PREFIX}{}", self.name)
    }
    pub fn veth(&self) -> String {
        format!("{VETH_PREFIX}{}", self.name)
    }
}

pub fn lab_node(name: &str) -> Result<LabNode> {
    NODES
        .iter()
        .copied()
        .find(|n| n.name == name)
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "'{name}' is not a lab node; the lab has {}",
                NODES.map(|n| n.name).join(", ")
            ))
        })
}

pub fn bridge_ip() -> Ipv4Addr {
    Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], 1)
}

pub fn console_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(bridge_ip(), CONSOLE_PORT))
}

/// What `up` should build.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Nodes that run nothing but sshd (for provisioning from scratch).
    pub bare: bool,
    /// The `twofold` binary, which runs the console server as a daemon.
    pub twofold_exe: PathBuf,
    /// Register the lab's nodes in this inventory.
    pub inventory: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub name: String,
    pub role: Role,
    pub address: String,
    pub ssh_port: u16,
    /// `running`, `down` (no namespace) or `broken` (namespace without a live anchor).
    pub state: String,
    pub pid: Option<u32>,
    pub daemons: Vec<DaemonStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DaemonStatus {
    pub name: String,
    pub running: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub dir: PathBuf,
    pub domain_type: Option<String>,
    pub nodes: Vec<NodeStatus>,
    pub console: Option<String>,
}

impl LabStatus {
    pub fn all_running(&self) -> bool {
        self.nodes.iter().all(|n| n.state == "running")
    }
}

/// The lab rooted at one state folder.
#[derive(Debug, Clone)]
pub struct Lab {
    pub dir: PathBuf,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    /// The lab's state lives in `TWOFOLD_LAB_DIR`, by default /var/lib/twofold-lab.
    pub fn new() -> Lab {
        let dir = std::env::var_os("TWOFOLD_LAB_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/var/lib/twofold-lab"));
        Lab { dir }
    }

    pub fn node_dir(&self, name: &str) -> PathBuf {
        self.dir.join("nodes").join(name)
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn nodes_file(&self) -> PathBuf {
        self.dir.join("nodes.toml")
    }
    pub fn console_dir(&self) -> PathBuf {
        self.dir.join("console")
    }
    pub fn guest_cache(&self) -> PathBuf {
        self.dir.join("guest")
    }

    /// The PID of a node's anchor process, if the node is alive.
    pub fn anchor_pid(&self, name: &str) -> Option<u32> {
        let text = std::fs::read_to_string(self.node_dir(name).join("anchor.pid")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        // A killed anchor can stay a zombie where nothing reaps orphans: it is still dead.
        (comm.trim() == "sleep" && !node::is_zombie(pid)).then_some(pid)
    }

    /// Bring the lab up (see the module docs). Returns its status.
    pub fn up(&self, opts: &UpOptions, progress: &dyn Progress) -> Result<LabStatus> {
        require_root("twofold lab up")?;
        check_tools()?;
        std::fs::create_dir_all(&self.dir).ctx(|| format!("creating {}", self.dir.display()))?;

        // The guest image and the choice between KVM and TCG come first: nodes of a TCG lab do
        // not see /dev/kvm (see node-init.sh).
        progress.begin("building the lab guest", None);
        let assets = guest::build_assets(&self.guest_cache(), progress)?;
        let domain_type = guest::detect_domain_type(&self.guest_cache(), &assets);
        progress.finish();

        let status = self.status()?;
        let bare_marker = self.dir.join("bare");
        let was_bare = bare_marker.exists();
        if !status.all_running()
            || (was_bare != opts.bare && status.nodes.iter().any(|n| n.state != "down"))
        {
            if status.nodes.iter().any(|n| n.state != "down") {
                progress.message("lab is incomplete or of the other kind: tearing it down first");
            }
            self.down(progress)?;
            self.build_nodes(opts, domain_type == guest::DomainType::Qemu, progress)?;
        } else {
            progress.message("all four nodes already running");
        }
        if opts.bare {
            std::fs::write(&bare_marker, b"").ctx(|| "writing the lab's bare marker".into())?;
        } else {
            let _ = std::fs::remove_file(&bare_marker);
            self.ensure_console_server(&opts.twofold_exe, progress)?;
            self.provision(domain_type == guest::DomainType::Qemu, progress)?;
            demo::ensure(self, &assets, domain_type, progress)?;
        }
        let list = self.node_list()?;
        std::fs::write(self.nodes_file(), list.to_toml())
            .ctx(|| format!("writing {}", self.nodes_file().display()))?;
        if let Some(db) = &opts.inventory {
            let inv = Inventory::open(db)?;
            for n in &list.nodes {
                inv.upsert_node(n)?;
            }
            inv.add_event(
                crate::inventory::Severity::Info,
                "lab",
                "lab is up: host1, host2, stor1, stor2",
            )?;
        }
        self.status()
    }

    fn build_nodes(&self, opts: &UpOptions, hide_kvm: bool, progress: &dyn Progress) -> Result<()> {
        progress.begin("creating nodes", Some(NODES.len() as u64));
        node::ensure_admin_key(self)?;
        // Host keys and root keys are made before any node starts, so every node's known_hosts
        // pins every other node from the start.
        for n in NODES {
            node::prepare_dir(self, &n, hide_kvm, opts.bare)?;
        }
        node::write_trust(self, opts.bare)?;
        node::ensure_bridge()?;
        for (i, n) in NODES.iter().enumerate() {
            node::create_netns(n)?;
            node::spawn(self, n, opts.bare)?;
            progress.update(i as u64 + 1, None);
        }
        for n in NODES {
            node::wait_ready(self, &n, opts.bare)?;
            progress.message(&format!(
                "{} up at {} ({})",
                n.name,
                n.ip(),
                n.role.as_str()
            ));
        }
        progress.finish();
        Ok(())
    }

    /// Set the nodes up as a platform with Twofold's own provisioning engine (the same path
    /// `twofold setup apply` and the desktop wizard take: connect, preflight, apply), logging in
    /// with the lab's admin key. Idempotent.
    fn provision(&self, emulated: bool, progress: &dyn Progress) -> Result<()> {
        use crate::provision::{apply::ApplyCancel, connect, engine, PreflightOptions};
        let req = engine::SetupRequest {
            nodes: self.node_list()?,
            credentials: connect::Credentials {
                twofold_key: self.admin_key(),
                password: None,
                node_passwords: Default::default(),
                trust_first_contact: false,
            },
            protect: Vec::new(),
            preflight: PreflightOptions {
                allow_emulation: emulated,
                ..PreflightOptions::default()
            },
        };
        let jobs = self.dir.join("setup.db");
        // A runtime of its own on a thread of its own: `up` is blocking and may be called from
        // inside another runtime (the desktop app).
        std::thread::scope(|s| {
            s.spawn(|| -> Result<()> {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| Error::io("starting the provisioning runtime", e))?;
                rt.block_on(engine::provision(req, &jobs, progress, &ApplyCancel::new()))
                    .map(|_| ())
            })
            .join()
            .unwrap_or_else(|_| Err(Error::Lab("provisioning the lab panicked".into())))
        })
    }

    /// Tear everything down: processes, namespaces, veths, the bridge, node state.
    pub fn down(&self, progress: &dyn Progress) -> Result<()> {
        require_root("twofold lab down")?;
        progress.begin("tearing the lab down", None);
        self.stop_console_server();
        // Console logs belong to the guests of this lab; a new lab starts with none.
        let console = self.console_dir();
        if console.exists() {
            std::fs::remove_dir_all(&console).ctx(|| format!("removing {}", console.display()))?;
        }
        node::kill_all(self);
        for ns in node::lab_netns() {
            cmd::ok("ip", &["netns", "del", &ns]);
        }
        for link in node::lab_links() {
            cmd::ok("ip", &["link", "del", &link]);
        }
        cmd::ok("ip", &["link", "del", BRIDGE]);
        node::release_netns_mount();
        let nodes_dir = self.dir.join("nodes");
        if nodes_dir.exists() {
            std::fs::remove_dir_all(&nodes_dir)
                .ctx(|| format!("removing {}", nodes_dir.display()))?;
        }
        let _ = std::fs::remove_file(self.nodes_file());
        let _ = std::fs::remove_file(self.dir.join("bare"));
        for f in ["setup.db", "setup.db-wal", "setup.db-shm"] {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        progress.finish();
        let left = node::leftovers(self);
        if left.is_empty() {
            Ok(())
        } else {
            Err(Error::Lab(format!(
                "teardown left {}; run `twofold lab down` again, or remove them by hand",
                left.join(", ")
            )))
        }
    }

    pub fn status(&self) -> Result<LabStatus> {
        let netns = node::lab_netns();
        let mut nodes = Vec::new();
        for n in NODES {
            let pid = self.anchor_pid(n.name);
            let has_ns = netns.contains(&n.netns());
            let state = match (has_ns, pid) {
                (true, Some(_)) => "running",
                (false, None) => "down",
                _ => "broken",
            };
            let daemons = if state == "running" {
                node::daemons(&n, &self.dir.join("bare").exists())
            } else {
                Vec::new()
            };
            nodes.push(NodeStatus {
                name: n.name.to_string(),
                role: n.role,
                address: n.ip().to_string(),
                ssh_port: 22,
                state: state.to_string(),
                pid,
                daemons,
            });
        }
        let domain_type = std::fs::read_to_string(self.guest_cache().join("domain-type"))
            .ok()
            .map(|s| s.trim().to_string());
        let console = self.console_pid().map(|_| console_addr().to_string());
        Ok(LabStatus {
            dir: self.dir.clone(),
            domain_type,
            nodes,
            console,
        })
    }

    /// The node list (`twofold lab nodes`): addresses, roles, SSH port, key and pinned host key.
    pub fn node_list(&self) -> Result<NodeList> {
        let mut nodes = Vec::new();
        for n in NODES {
            let host_key =
                std::fs::read_to_string(self.node_dir(n.name).join("ssh/ssh_host_ed25519_key.pub"))
                    .ok()
                    .map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" "));
            nodes.push(NodeSpec {
                name: n.name.to_string(),
                role: n.role,
                address: n.ip().to_string(),
                ssh_port: 22,
                user: "root".into(),
                // Bare nodes take a password until provisioning installs Twofold's key.
                key: (!self.dir.join("bare").exists()).then(|| self.admin_key()),
                host_key,
            });
        }
        Ok(NodeList { nodes })
    }

    /// How Twofold and the hosts themselves reach each lab host's libvirt.
    pub fn host_targets(&self) -> Result<Vec<HostTarget>> {
        let list = self.node_list()?;
        Ok(list
            .hosts()
            .map(|n| crate::platform::host_target(n, &self.known_hosts()))
            .collect())
    }

    /// Run a command inside a node's namespaces with this process's stdio; returns its exit code.
    pub fn exec(&self, node: &str, args: &[String]) -> Result<i32> {
        let pid = self.require_pid(node)?;
        let status = Command::new("nsenter")
            .args(nsenter_args(pid))
            .args(args)
            .status()
            .map_err(|e| Error::Lab(format!("cannot run nsenter: {e}")))?;
        Ok(status.code().unwrap_or(128))
    }

    /// Run a command inside a node's namespaces and return its standard output.
    pub fn exec_output(&self, node: &str, args: &[&str]) -> Result<String> {
        let pid = self.require_pid(node)?;
        let mut full: Vec<String> = nsenter_args(pid);
        full.extend(args.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        cmd::run("nsenter", &refs).map_err(|e| Error::Lab(format!("on {node}: {e}")))
    }

    /// Power a node off as a power cut would: every process of the node killed at once, its
    /// network link down (peers get no goodbye and must notice by themselves).
    pub fn power_off(&self, node: &str) -> Result<()> {
        require_root("powering a lab node off")?;
        let n = lab_node(node)?;
        cmd::run("ip", &["link", "set", &n.veth(), "down"])?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut pids = node::netns_pids(&n.netns());
            pids.extend(self.anchor_pid(node));
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Lab(format!(
                    "{node} would not power off: processes {pids:?} survive"
                )));
            }
            node::signal_pids(&pids, "-KILL");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Power a node back on: link up, its init again with the state it had on disk (GlusterFS
    /// state, bricks, keys); daemons start as at boot of its kind (on a bare node: sshd only).
    pub fn power_on(&self, node: &str) -> Result<()> {
        require_root("powering a lab node on")?;
        let n = lab_node(node)?;
        if self.anchor_pid(node).is_some() {
            return Ok(());
        }
        let bare = self.dir.join("bare").exists();
        cmd::run("ip", &["link", "set", &n.veth(), "up"])?;
        node::spawn(self, &n, bare)?;
        node::wait_ready(self, &n, bare)?;
        // Back on the network: it reaches every other node that is on (the bridge port may need
        // a moment).
        let deadline = Instant::now() + Duration::from_secs(30);
        for other in NODES
            .iter()
            .filter(|o| o.name != node && self.anchor_pid(o.name).is_some())
        {
            let probe = format!("exec 3<>/dev/tcp/{}/22", other.ip());
            while self.exec_output(node, &["bash", "-c", &probe]).is_err() {
                if Instant::now() > deadline {
                    return Err(Error::Lab(format!(
                        "{node} is back but cannot reach {}",
                        other.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        Ok(())
    }

    /// The root password of bare lab nodes (`lab up --bare`), for first contact by provisioning.
    pub fn root_password(&self) -> Result<crate::node::Secret> {
        node::root_password(self)
    }

    /// PIDs of a node's processes named `comm`. The lab's nodes share this machine's PID
    /// namespace, so `pkill` run inside one node would hit the same daemon on every node.
    pub fn daemon_pids(&self, node: &str, comm: &str) -> Result<Vec<u32>> {
        let n = lab_node(node)?;
        Ok(node::netns_pids(&n.netns())
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm)
            })
            .collect())
    }

    /// Stop one daemon of one node (TERM, then KILL), as when it crashes.
    pub fn stop_daemon(&self, node: &str, comm: &str) -> Result<()> {
        let pids = self.daemon_pids(node, comm)?;
        if pids.is_empty() {
            return Err(Error::Lab(format!("{comm} does not run on {node}")));
        }
        node::kill_pids(&pids);
        Ok(())
    }

    fn require_pid(&self, node: &str) -> Result<u32> {
        lab_node(node)?;
        self.anchor_pid(node).ok_or_else(|| {
            Error::Lab(format!(
                "node {node} is not running; bring the lab up with `twofold lab up`"
            ))
        })
    }

    fn console_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.console_dir().join("server.pid")).ok()?;
        let pid: u32 = text.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        String::from_utf8_lossy(&cmdline)
            .contains("console-server")
            .then_some(pid)
    }

    /// Start the console server that collects guests' serial output, unless it runs.
    pub fn ensure_console_server(&self, exe: &Path, progress: &dyn Progress) -> Result<()> {
        if self.console_pid().is_some() {
            return Ok(());
        }
        let dir = self.console_dir();
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let log = std::fs::File::create(dir.join("server.log"))
            .ctx(|| "creating the console server's log".into())?;
        let child = Command::new("setsid")
            .arg(exe)
            .args(["lab", "console-server", "--bind"])
            .arg(console_addr().to_string())
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().ctx(|| "console log".into())?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                Error::Lab(format!(
                    "cannot start the console server {} ({e}); build twofold first",
                    exe.display()
                ))
            })?;
        std::fs::write(dir.join("server.pid"), child.id().to_string())
            .ctx(|| "writing the console server's pid".into())?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&console_addr(), Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(Error::Lab(format!(
                    "the console server did not start listening on {}; see {}",
                    console_addr(),
                    dir.join("server.log").display()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        progress.message(&format!("console server listening on {}", console_addr()));
        Ok(())
    }

    fn stop_console_server(&self) {
        if let Some(pid) = self.console_pid() {
            node::kill_pids(&[pid]);
        }
        let _ = std::fs::remove_file(self.console_dir().join("server.pid"));
    }
}

fn nsenter_args(pid: u32) -> Vec<String> {
    vec![
        "-t".into(),
        pid.to_string(),
        "-m".into(),
        "-n".into(),
        "-u".into(),
        "--".into(),
    ]
}

/// The effective user id, read from /proc so no unsafe call is needed.
pub fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
}

pub fn require_root(what: &str) -> Result<()> {
    if euid() == Some(0) {
        Ok(())
    } else {
        Err(Error::NeedsRoot { what: what.into() })
    }
}

fn check_tools() -> Result<()> {
    let tools = [
        "ip",
        "unshare",
        "nsenter",
        "setsid",
        "sshd",
        "ssh-keygen",
        "libvirtd",
        "virtlogd",
        "virtlockd",
        "virsh",
        "glusterd",
        "gluster",
        "qemu-system-x86_64",
        "qemu-img",
    ];
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !cmd::have(t) && !Path::new("/usr/sbin").join(t).exists())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Lab(format!(
            "missing tools: {}; run installer/install-deps.sh first",
            missing.join(", ")
        )))
    }
}
