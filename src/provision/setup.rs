//! The platform's setup plan: from a node list (two hosts, two storage nodes, reachable over SSH)
//! to a replicated VM store that both hosts use, libvirt running on the hosts with disk leases on
//! that store, and the hosts trusting each other for live migration. Every step is a shell
//! command pair (is it there? make it so) run through the plan engine, idempotent, and written so
//! that it works on a machine with systemd and on one without (the lab's nodes).

use std::fmt::Write as _;

use super::plan::{Plan, StepAction, StepCtx, Undone, Verdict};
use crate::error::{Error, Result};
use crate::nodes::{NodeList, NodeSpec, Role};
use crate::shell::shell_quote;
use crate::storage::layout::{ARBITER_BRICK, BRICK, IMAGES, LEASES, POOL, STORE, VOLUME};

/// Volume options for VM images: QEMU (libvirt-qemu) owns its images, no client-side caching (a
/// destination host must never read a block it cached before a migration), O_DIRECT reaches the
/// bricks, and eager locking for fewer round trips on writes.
const VOLUME_OPTIONS: &[(&str, &str)] = &[
    ("server.allow-insecure", "on"),
    ("performance.quick-read", "off"),
    ("performance.read-ahead", "off"),
    ("performance.io-cache", "off"),
    ("performance.open-behind", "off"),
    ("performance.stat-prefetch", "off"),
    ("network.remote-dio", "disable"),
    ("performance.strict-o-direct", "on"),
    ("cluster.eager-lock", "enable"),
    // Writes need two of the three bricks (data, data, arbiter): two halves of a split can never
    // both write, so the copies cannot diverge.
    ("cluster.quorum-type", "auto"),
    // How long clients wait for a brick that vanished without closing its connections (a power
    // cut) before going on without it: `PING_TIMEOUT_S`, which the status quotes.
    ("network.ping-timeout", "20"),
];

/// Start a service with systemd where it runs, else directly (a node without systemd).
fn start_service(unit: &str, direct: &str) -> String {
    format!("if [ -d /run/systemd/system ]; then systemctl enable --now {unit}; else {direct}; fi")
}

/// Shell that succeeds when the pid file `pid_file` names a live process called `name`: the
/// daemon runs. A daemon killed with SIGKILL leaves its pid file (and its sockets) behind, so
/// neither file alone says anything.
fn daemon_alive(name: &str, pid_file: &str) -> String {
    format!(
        "{{ p=$(cat {pid_file} 2>/dev/null); [ -n \"$p\" ] && [ \"$(cat /proc/$p/comm 2>/dev/null)\" = {name} ] && \
         ! grep -q '^State:[[:space:]]*Z' /proc/$p/status 2>/dev/null; }}"
    )
}

/// Shell that starts a daemon directly (no systemd) unless it runs: when its pid file names no
/// live process, what a dead one left (pid file, sockets) is removed first, then `start` runs.
/// A daemon that runs but does not answer is left alone: the step's wait then reports it.
fn start_daemon(name: &str, pid_file: &str, sockets: &[&str], start: &str) -> String {
    format!(
        "if {alive}; then :; else rm -f {pid_file} {sockets} && {start}; fi",
        alive = daemon_alive(name, pid_file),
        sockets = sockets.join(" "),
    )
}

/// Start libvirtd unless it runs (both the host-daemons step and the disk-leases step's restart).
fn start_libvirtd() -> String {
    start_daemon(
        "libvirtd",
        "/run/libvirtd.pid",
        &[
            "/run/libvirt/libvirt-sock",
            "/run/libvirt/libvirt-sock-ro",
            "/run/libvirt/libvirt-admin-sock",
        ],
        "libvirtd -d",
    )
}

/// Shell that stops a daemon (no systemd) if it runs, and waits (up to 10 s) until it is gone.
fn stop_daemon(name: &str, pid_file: &str) -> String {
    format!(
        "if {alive}; then kill \"$p\" && for i in $(seq 100); do {alive} || break; sleep 0.1; done; ! {alive}; fi",
        alive = daemon_alive(name, pid_file),
    )
}

/// Shell that succeeds when libvirt's daemons answer on their sockets: libvirtd through virsh,
/// virtlogd and virtlockd through their admin sockets.
const LIBVIRT_ANSWERS: &str = "virsh -c qemu:///system version >/dev/null 2>&1 && \
     virt-admin -c virtlogd:///system srv-list >/dev/null 2>&1 && \
     virt-admin -c virtlockd:///system srv-list >/dev/null 2>&1";

/// Shell that waits (up to 20 s) until `test` succeeds, and fails if it never does: daemons
/// answer a moment after they start.
fn wait_until(test: &str) -> String {
    format!("for i in $(seq 100); do {test} && exit 0; sleep 0.2; done; exit 1")
}

/// A step made of shell commands on one node.
struct ShellStep {
    id: String,
    node: String,
    title: String,
    why: String,
    changes: Vec<String>,
    /// Exit status 0 when the desired state is there.
    check: String,
    apply: String,
    stdin: Option<Vec<u8>>,
    undo: Option<String>,
    /// What a failed verification means, for a person.
    broken: String,
}

impl StepAction for ShellStep {
    fn id(&self) -> String {
        self.id.clone()
    }
    fn node(&self) -> &str {
        &self.node
    }
    fn title(&self) -> String {
        self.title.clone()
    }
    fn why(&self) -> String {
        self.why.clone()
    }
    fn changes(&self) -> Vec<String> {
        self.changes.clone()
    }
    async fn check(&self, ctx: &StepCtx) -> Result<bool> {
        ctx.succeeds(&self.node, &self.check).await
    }
    async fn apply(&self, ctx: &StepCtx) -> Result<()> {
        ctx.run_ok(&self.node, &self.title, &self.apply, self.stdin.as_deref())
            .await
            .map(|_| ())
    }
    async fn undo(&self, ctx: &StepCtx) -> Result<Undone> {
        let Some(u) = &self.undo else {
            return Ok(Undone::NothingToUndo);
        };
        ctx.run_ok(&self.node, &format!("undoing: {}", self.title), u, None)
            .await?;
        Ok(Undone::Reverted)
    }
    async fn verify(&self, ctx: &StepCtx) -> Result<Verdict> {
        Ok(if ctx.succeeds(&self.node, &self.check).await? {
            Verdict::Pass
        } else {
            Verdict::fail(self.broken.clone())
        })
    }
}

/// What the setup needs besides the node list.
#[derive(Debug, Clone)]
pub struct SetupInput {
    /// Twofold's own public key (OpenSSH format), installed on every node.
    pub twofold_public_key: String,
}

/// The nodes a platform needs: two hosts and two storage nodes.
fn pick(list: &NodeList) -> Result<(Vec<&NodeSpec>, Vec<&NodeSpec>)> {
    list.validate().map_err(Error::InvalidInput)?;
    let hosts: Vec<&NodeSpec> = list.hosts().collect();
    let stors: Vec<&NodeSpec> = list
        .nodes
        .iter()
        .filter(|n| n.role == Role::Storage)
        .collect();
    if hosts.len() != 2 || stors.len() != 2 {
        return Err(Error::InvalidInput(format!(
            "the node list has {} host(s) and {} storage node(s); Twofold sets up exactly two of each (role = \"host\" and role = \"storage\")",
            hosts.len(),
            stors.len()
        )));
    }
    Ok((hosts, stors))
}

/// The plan that sets the platform up.
pub fn build_plan(list: &NodeList, input: &SetupInput) -> Result<Plan> {
    let (hosts, stors) = pick(list)?;
    let key = input.twofold_public_key.trim();
    if !key.starts_with("ssh-") || key.lines().count() != 1 {
        return Err(Error::InvalidInput(
            "Twofold's public key is not one OpenSSH key line".into(),
        ));
    }
    let key_body = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    let mut plan = Plan::new("twofold setup");

    // Every node: Twofold's key, and every node's name in /etc/hosts.
    let mut block = String::from("# twofold begin\n");
    for n in &list.nodes {
        let _ = writeln!(block, "{} {}", n.address, n.name);
    }
    block.push_str("# twofold end\n");
    for n in &list.nodes {
        plan.push(ShellStep {
            id: format!("{}/twofold-key", n.name),
            node: n.name.clone(),
            title: format!("Let Twofold log in to {} with its own key", n.name),
            why: "Twofold made a key pair of its own; with its public key installed, it no longer needs the password you typed.".into(),
            changes: vec!["adds one line to root's ~/.ssh/authorized_keys".into()],
            check: format!("grep -qF {} ~/.ssh/authorized_keys 2>/dev/null", shell_quote(&key_body)),
            apply: "mkdir -p ~/.ssh && chmod 700 ~/.ssh && k=$(cat) && touch ~/.ssh/authorized_keys && \
                    { grep -qF \"$k\" ~/.ssh/authorized_keys || printf '%s\\n' \"$k\" >> ~/.ssh/authorized_keys; } && \
                    chmod 600 ~/.ssh/authorized_keys".into(),
            stdin: Some(key.as_bytes().to_vec()),
            undo: None,
            broken: "Twofold's key is not in root's authorized_keys".into(),
        })?;
        let checks: Vec<String> = list
            .nodes
            .iter()
            .map(|m| {
                format!(
                    "getent hosts {} | grep -qw {}",
                    shell_quote(&m.name),
                    shell_quote(&m.address)
                )
            })
            .collect();
        plan.push(ShellStep {
            id: format!("{}/hosts-file", n.name),
            node: n.name.clone(),
            title: format!("Teach {} the names of the other nodes", n.name),
            why: "GlusterFS and libvirt name the nodes; every node must resolve every other node's name to the right address, even without DNS.".into(),
            changes: vec!["writes a marked block of node names into /etc/hosts".into()],
            check: checks.join(" && "),
            // Rewritten in place (not renamed over), which also works where /etc/hosts is a mount.
            apply: format!(
                "t=$(mktemp) && sed '/^# twofold begin$/,/^# twofold end$/d' /etc/hosts > \"$t\" && \
                 printf '%s' {} >> \"$t\" && cat \"$t\" > /etc/hosts && rm -f \"$t\"",
                shell_quote(&block)
            ),
            stdin: None,
            undo: None,
            broken: "some node names do not resolve to their addresses".into(),
        })?;
    }

    // Storage: glusterd, peers, bricks, the volume. The first host holds the volume's arbiter
    // brick (names and metadata, no data): with three votes, losing any one node keeps the store
    // writable, and two sides of a split can never both write (see the README's design notes).
    let (s1, s2) = (stors[0], stors[1]);
    let arbiter = hosts[0];
    let gluster_nodes = [
        (s1, BRICK, "This node keeps a full copy of every VM disk."),
        (s2, BRICK, "This node keeps a full copy of every VM disk."),
        (
            arbiter,
            ARBITER_BRICK,
            "This host holds the store's arbiter: no data, only the vote that breaks a tie between the two storage nodes.",
        ),
    ];
    for (s, brick, role) in gluster_nodes {
        plan.push(ShellStep {
            id: format!("{}/glusterd", s.name),
            node: s.name.clone(),
            title: format!("Start the GlusterFS daemon on {}", s.name),
            why: format!("glusterd manages this node's part of the replicated VM store. {role}"),
            changes: vec!["starts glusterd (enabled at boot where systemd runs)".into()],
            check: "gluster --mode=script pool list >/dev/null 2>&1".into(),
            apply: format!(
                "{} && {}",
                start_service(
                    "glusterd",
                    &start_daemon(
                        "glusterd",
                        "/run/glusterd.pid",
                        &["/run/glusterd.socket"],
                        "glusterd -p /run/glusterd.pid"
                    )
                ),
                wait_until("gluster --mode=script pool list >/dev/null 2>&1")
            ),
            stdin: None,
            undo: None,
            broken: "glusterd does not answer".into(),
        })?;
        plan.push(ShellStep {
            id: format!("{}/brick", s.name),
            node: s.name.clone(),
            title: format!("Make the brick folder on {}", s.name),
            why: format!(
                "A brick is the folder where a node keeps its part of the VM store. {role}"
            ),
            changes: vec![format!("creates {brick}")],
            check: format!("test -d {brick}"),
            apply: format!("mkdir -p {brick}"),
            stdin: None,
            undo: None,
            broken: format!("{brick} is missing"),
        })?;
    }
    for peer in [s2, arbiter] {
        plan.push(ShellStep {
            id: format!("{}/peer-{}", s1.name, peer.name),
            node: s1.name.clone(),
            title: format!("Add {} to {}'s storage pool", peer.name, s1.name),
            why: "The nodes of the VM store must know each other before they can hold a replicated volume.".into(),
            changes: vec![format!("gluster peer probe {}", peer.name)],
            check: format!(
                "gluster --mode=script pool list | grep -w {} | grep -q Connected",
                shell_quote(&peer.name)
            ),
            apply: format!(
                "gluster --mode=script peer probe {} && {}",
                shell_quote(&peer.name),
                wait_until(&format!(
                    "gluster --mode=script pool list | grep -w {} | grep -q Connected",
                    shell_quote(&peer.name)
                ))
            ),
            stdin: None,
            undo: None,
            broken: format!("{} is not a connected peer of {}", peer.name, s1.name),
        })?;
    }
    let uid_gid =
        "$(id -u libvirt-qemu 2>/dev/null || echo 64055) $(getent group kvm | cut -d: -f3)";
    let mut set_opts = format!(
        "set -- {uid_gid}; gluster --mode=script volume set {VOLUME} storage.owner-uid \"$1\" && \
         gluster --mode=script volume set {VOLUME} storage.owner-gid \"${{2:-$1}}\""
    );
    let mut check_opts = String::from("true");
    for (k, v) in VOLUME_OPTIONS {
        let _ = write!(
            set_opts,
            " && gluster --mode=script volume set {VOLUME} {k} {v}"
        );
        let _ = write!(
            check_opts,
            " && gluster --mode=script volume get {VOLUME} {k} | awk '$1 == \"{k}\" {{print $2}}' | grep -qx {v}"
        );
    }
    plan.push(ShellStep {
        id: format!("{}/volume", s1.name),
        node: s1.name.clone(),
        title: format!("Create the replicated VM store on {} and {}", s1.name, s2.name),
        why: "One GlusterFS volume with a full copy of every VM disk on each storage node: either can fail and the VMs keep their disks.".into(),
        changes: vec![format!(
            "gluster volume create {VOLUME} replica 3 arbiter 1 {}:{BRICK} {}:{BRICK} {}:{ARBITER_BRICK}",
            s1.name, s2.name, arbiter.name
        )],
        check: format!("gluster --mode=script volume info {VOLUME} >/dev/null 2>&1"),
        apply: format!(
            "gluster --mode=script volume create {VOLUME} replica 3 arbiter 1 {a}:{BRICK} {b}:{BRICK} {c}:{ARBITER_BRICK} force",
            a = s1.name,
            b = s2.name,
            c = arbiter.name
        ),
        stdin: None,
        undo: Some(format!(
            "! gluster --mode=script volume info {VOLUME} >/dev/null 2>&1 || gluster --mode=script volume delete {VOLUME}"
        )),
        broken: format!("volume {VOLUME} does not exist"),
    })?;
    plan.push(ShellStep {
        id: format!("{}/volume-options", s1.name),
        node: s1.name.clone(),
        title: "Tune the VM store for VM disks".into(),
        why: "QEMU must own its disk images, and no host may read a stale cached block after a VM moved to it.".into(),
        changes: vec![format!("gluster volume set {VOLUME} ... ({} options)", VOLUME_OPTIONS.len() + 2)],
        check: format!(
            "{check_opts} && gluster --mode=script volume get {VOLUME} storage.owner-uid | grep -qw \"$(id -u libvirt-qemu 2>/dev/null || echo 64055)\""
        ),
        apply: set_opts,
        stdin: None,
        undo: None,
        broken: "some volume options differ from Twofold's".into(),
    })?;
    plan.push(ShellStep {
        id: format!("{}/volume-started", s1.name),
        node: s1.name.clone(),
        title: "Start the VM store".into(),
        why: "A started volume serves its bricks to the hosts.".into(),
        changes: vec![format!("gluster volume start {VOLUME}")],
        check: format!("gluster --mode=script volume info {VOLUME} | grep -q '^Status: Started'"),
        apply: format!("gluster --mode=script volume start {VOLUME}"),
        stdin: None,
        undo: None,
        broken: format!("volume {VOLUME} is not started"),
    })?;

    // Hosts: libvirt, the store, leases, trust between the hosts.
    for h in &hosts {
        let other = hosts.iter().find(|o| o.name != h.name).expect("two hosts");
        plan.push(ShellStep {
            id: format!("{}/libvirt", h.name),
            node: h.name.clone(),
            title: format!("Start libvirt on {}", h.name),
            why: "libvirtd runs the VMs; virtlogd keeps their logs; virtlockd holds their disk leases.".into(),
            changes: vec!["starts virtlogd, virtlockd and libvirtd (enabled at boot where systemd runs)".into()],
            check: LIBVIRT_ANSWERS.into(),
            apply: format!(
                "{} && {}",
                start_service(
                    "virtlogd virtlockd libvirtd",
                    &[
                        start_daemon(
                            "virtlogd",
                            "/run/virtlogd.pid",
                            &["/run/libvirt/virtlogd-sock", "/run/libvirt/virtlogd-admin-sock"],
                            "virtlogd -d",
                        ),
                        start_daemon(
                            "virtlockd",
                            "/run/virtlockd.pid",
                            &["/run/libvirt/virtlockd-sock", "/run/libvirt/virtlockd-admin-sock"],
                            "virtlockd -d",
                        ),
                        start_libvirtd(),
                    ]
                    .join(" && ")
                ),
                wait_until(LIBVIRT_ANSWERS)
            ),
            stdin: None,
            undo: None,
            broken: "libvirt does not answer".into(),
        })?;
        let src = format!("{}:/{VOLUME}", s1.name);
        let fstab = format!(
            "{src} {STORE} glusterfs defaults,_netdev,backup-volfile-servers={} 0 0",
            s2.name
        );
        plan.push(ShellStep {
            id: format!("{}/store-mount", h.name),
            node: h.name.clone(),
            title: format!("Mount the VM store on {}", h.name),
            why: "Both hosts see the same VM disks at the same path, so a VM can move between them without copying its disk.".into(),
            changes: vec![format!("mounts {src} at {STORE}"), "adds the mount to /etc/fstab".into()],
            check: format!("mountpoint -q {STORE} && grep -qF {} /etc/fstab", shell_quote(&fstab)),
            apply: format!(
                "mkdir -p {STORE} && {{ mountpoint -q {STORE} || mount -t glusterfs -o backup-volfile-servers={s2} {src} {STORE}; }} && \
                 {{ grep -qF {f} /etc/fstab || printf '%s\\n' {f} >> /etc/fstab; }}",
                s2 = s2.name,
                f = shell_quote(&fstab)
            ),
            stdin: None,
            undo: Some(format!("! mountpoint -q {STORE} || umount {STORE}")),
            broken: format!("{STORE} is not mounted from the VM store"),
        })?;
        let lock_conf = format!(
            "grep -qx 'lock_manager = \"lockd\"' /etc/libvirt/qemu.conf && \
             grep -qx 'file_lockspace_dir = \"{LEASES}\"' /etc/libvirt/qemu-lockd.conf && \
             grep -qx 'require_lease_for_disks = 1' /etc/libvirt/qemu-lockd.conf && test -d {LEASES}"
        );
        plan.push(ShellStep {
            id: format!("{}/disk-leases", h.name),
            node: h.name.clone(),
            title: format!("Turn on disk leases on {}", h.name),
            why: "A lease on the shared store for every VM disk: a disk open on one host cannot be opened on the other, so a VM can never run twice.".into(),
            changes: vec![
                "sets lock_manager = \"lockd\" in /etc/libvirt/qemu.conf".into(),
                format!("keeps leases in {LEASES} (/etc/libvirt/qemu-lockd.conf)"),
                "restarts libvirtd (running VMs keep running)".into(),
            ],
            check: lock_conf.clone(),
            apply: format!(
                "mkdir -p {LEASES} && \
                 t=$(mktemp) && grep -v '^lock_manager' /etc/libvirt/qemu.conf > \"$t\" && echo 'lock_manager = \"lockd\"' >> \"$t\" && cat \"$t\" > /etc/libvirt/qemu.conf && \
                 grep -v '^file_lockspace_dir\\|^auto_disk_leases\\|^require_lease_for_disks' /etc/libvirt/qemu-lockd.conf > \"$t\" && \
                 printf 'auto_disk_leases = 1\\nrequire_lease_for_disks = 1\\nfile_lockspace_dir = \"{LEASES}\"\\n' >> \"$t\" && cat \"$t\" > /etc/libvirt/qemu-lockd.conf && rm -f \"$t\" && \
                 if [ -d /run/systemd/system ]; then systemctl restart libvirtd; else {} && {}; fi && \
                 {}",
                stop_daemon("libvirtd", "/run/libvirtd.pid"),
                start_libvirtd(),
                wait_until("virsh -c qemu:///system version >/dev/null 2>&1")
            ),
            stdin: None,
            undo: None,
            broken: "libvirt is not configured for disk leases on the shared store".into(),
        })?;
        let pool_ok = format!(
            "virsh -c qemu:///system pool-dumpxml {POOL} 2>/dev/null | grep -qF '<path>{IMAGES}</path>' && \
             virsh -c qemu:///system pool-info {POOL} | grep -Eq '^State: +running' && \
             virsh -c qemu:///system pool-info {POOL} | grep -Eq '^Autostart: +yes'"
        );
        plan.push(ShellStep {
            id: format!("{}/storage-pool", h.name),
            node: h.name.clone(),
            title: format!("Give libvirt on {} the VM store as a storage pool", h.name),
            why: "New VM disks are made in the pool, which is on the replicated store, so every VM disk is on both storage nodes and both hosts can run the VM.".into(),
            changes: vec![
                format!("creates {IMAGES} on the store if missing"),
                format!("defines the libvirt storage pool '{POOL}' at {IMAGES}, started now and at boot"),
            ],
            check: pool_ok.clone(),
            apply: format!(
                "mkdir -p {IMAGES} && \
                 {{ virsh -c qemu:///system pool-info {POOL} >/dev/null 2>&1 || virsh -c qemu:///system pool-define-as {POOL} dir --target {IMAGES} >/dev/null; }} && \
                 {{ virsh -c qemu:///system pool-info {POOL} | grep -Eq '^State: +running' || virsh -c qemu:///system pool-start {POOL} >/dev/null; }} && \
                 virsh -c qemu:///system pool-autostart {POOL} >/dev/null"
            ),
            stdin: None,
            undo: Some(format!(
                "virsh -c qemu:///system pool-destroy {POOL} >/dev/null 2>&1; virsh -c qemu:///system pool-undefine {POOL} >/dev/null 2>&1; true"
            )),
            broken: format!("libvirt has no running, autostarted storage pool '{POOL}' at {IMAGES}"),
        })?;
        let other_key = other.host_key.clone().ok_or_else(|| {
            Error::InvalidInput(format!(
                "no pinned host key for {}; confirm its key first (setup pins keys on first contact)",
                other.name
            ))
        })?;
        let known = format!("{},{} {}", other.address, other.name, other_key);
        plan.push(ShellStep {
            id: format!("{}/trusts-{}", h.name, other.name),
            node: h.name.clone(),
            title: format!("Let {} reach {} for live migration", h.name, other.name),
            why: "During a live migration the source host's libvirt talks to the destination's over SSH, with the host's own key and the destination's pinned host key.".into(),
            changes: vec![
                format!("creates root's key pair on {} if missing", h.name),
                format!("pins {}'s host key in root's known_hosts", other.name),
            ],
            check: format!(
                "test -f ~/.ssh/id_ed25519 && grep -qF {} ~/.ssh/known_hosts 2>/dev/null",
                shell_quote(&known)
            ),
            apply: format!(
                "mkdir -p ~/.ssh && chmod 700 ~/.ssh && {{ test -f ~/.ssh/id_ed25519 || ssh-keygen -q -t ed25519 -N '' -C root@{n} -f ~/.ssh/id_ed25519; }} && \
                 {{ grep -qF {k} ~/.ssh/known_hosts 2>/dev/null || printf '%s\\n' {k} >> ~/.ssh/known_hosts; }}",
                n = h.name,
                k = shell_quote(&known)
            ),
            stdin: None,
            undo: None,
            broken: format!("{} has no key pair or does not pin {}'s host key", h.name, other.name),
        })?;
    }
    for h in &hosts {
        let other = hosts.iter().find(|o| o.name != h.name).expect("two hosts");
        plan.push(PeerKeyStep {
            from: h.name.clone(),
            to: other.name.clone(),
            to_address: other.address.clone(),
        })?;
    }
    Ok(plan)
}

/// Authorize one host's root key on the other host (a step that reads from one node and writes
/// on another), then prove it with an SSH login from the first to the second.
struct PeerKeyStep {
    from: String,
    to: String,
    to_address: String,
}

impl PeerKeyStep {
    fn login_test(&self) -> String {
        format!(
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=5 root@{} true",
            self.to_address
        )
    }
}

impl StepAction for PeerKeyStep {
    fn id(&self) -> String {
        format!("{}/authorized-on-{}", self.from, self.to)
    }
    fn node(&self) -> &str {
        &self.to
    }
    fn title(&self) -> String {
        format!("Authorize {}'s key on {}", self.from, self.to)
    }
    fn why(&self) -> String {
        format!(
            "{} can then log in to {} for peer-to-peer live migration.",
            self.from, self.to
        )
    }
    fn changes(&self) -> Vec<String> {
        vec![format!(
            "adds {}'s root key to root's ~/.ssh/authorized_keys on {}",
            self.from, self.to
        )]
    }
    async fn check(&self, ctx: &StepCtx) -> Result<bool> {
        ctx.succeeds(&self.from, &self.login_test()).await
    }
    async fn apply(&self, ctx: &StepCtx) -> Result<()> {
        let key = ctx
            .run_ok(
                &self.from,
                "reading root's public key",
                "cat ~/.ssh/id_ed25519.pub",
                None,
            )
            .await?;
        ctx.run_ok(
            &self.to,
            &self.title(),
            "mkdir -p ~/.ssh && chmod 700 ~/.ssh && k=$(cat) && touch ~/.ssh/authorized_keys && \
             { grep -qF \"$k\" ~/.ssh/authorized_keys || printf '%s\\n' \"$k\" >> ~/.ssh/authorized_keys; } && \
             chmod 600 ~/.ssh/authorized_keys",
            Some(key.stdout.as_slice()),
        )
        .await?;
        Ok(())
    }
    async fn undo(&self, _ctx: &StepCtx) -> Result<Undone> {
        // No undo: a key line it may have added is what the next run adds anyway.
        Ok(Undone::NothingToUndo)
    }
    async fn verify(&self, ctx: &StepCtx) -> Result<Verdict> {
        Ok(if self.check(ctx).await? {
            Verdict::Pass
        } else {
            Verdict::fail(format!(
                "{} cannot log in to {} over SSH",
                self.from, self.to
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> NodeList {
        NodeList::parse(
            r#"
[[node]]
name = "host1"
role = "host"
address = "10.0.0.11"
host_key = "ssh-ed25519 AAAAhost1"
[[node]]
name = "host2"
role = "host"
address = "10.0.0.12"
host_key = "ssh-ed25519 AAAAhost2"
[[node]]
name = "stor1"
role = "storage"
address = "10.0.0.21"
[[node]]
name = "stor2"
role = "storage"
address = "10.0.0.22"
"#,
        )
        .unwrap()
    }

    fn input() -> SetupInput {
        SetupInput {
            twofold_public_key: "ssh-ed25519 AAAAtwofold twofold@admin".into(),
        }
    }

    #[test]
    fn the_volume_gets_the_ping_timeout_the_status_counts_on() {
        use crate::storage::layout::PING_TIMEOUT_S;
        let set = VOLUME_OPTIONS
            .iter()
            .find(|(k, _)| *k == "network.ping-timeout")
            .map(|(_, v)| *v);
        assert_eq!(set, Some(PING_TIMEOUT_S.to_string().as_str()));
    }

    #[test]
    fn plan_covers_every_node_in_order() {
        let plan = build_plan(&list(), &input()).unwrap();
        let ids: Vec<String> = plan.steps().map(|s| s.id.clone()).collect();
        for n in ["host1", "host2", "stor1", "stor2"] {
            assert!(ids.contains(&format!("{n}/twofold-key")), "{ids:?}");
            assert!(ids.contains(&format!("{n}/hosts-file")), "{ids:?}");
        }
        let pos = |id: &str| ids.iter().position(|x| x == id).unwrap();
        assert!(pos("stor1/glusterd") < pos("stor1/peer-stor2"));
        assert!(pos("host1/glusterd") < pos("stor1/peer-host1"));
        assert!(pos("stor1/peer-host1") < pos("stor1/volume"));
        assert!(pos("stor1/peer-stor2") < pos("stor1/volume"));
        assert!(pos("stor1/volume") < pos("stor1/volume-started"));
        assert!(pos("stor1/volume-started") < pos("host1/store-mount"));
        assert!(pos("host1/store-mount") < pos("host1/disk-leases"));
        assert!(pos("host1/store-mount") < pos("host1/storage-pool"));
        assert!(pos("host2/trusts-host1") < pos("host2/authorized-on-host1"));
        let text = plan.render_text();
        assert!(
            text.contains("Create the replicated VM store on stor1 and stor2"),
            "{text}"
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["steps"].as_array().unwrap().len(), ids.len());
    }

    fn sh(script: &str) -> bool {
        std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap()
            .success()
    }

    fn pid_in(path: &std::path::Path) -> u32 {
        std::fs::read_to_string(path)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    #[test]
    fn a_daemon_that_died_is_started_again_and_a_live_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("sleep.pid");
        let socket = dir.path().join("sleep-sock");
        let (pid_s, sock_s) = (pid_file.to_str().unwrap(), socket.to_str().unwrap());
        // What a daemon killed with SIGKILL leaves: a pid file naming a dead process, a socket.
        let mut dead = std::process::Command::new("true").spawn().unwrap();
        dead.wait().unwrap();
        std::fs::write(&pid_file, format!("{}\n", dead.id())).unwrap();
        std::fs::write(&socket, b"").unwrap();
        assert!(!sh(&daemon_alive("sleep", pid_s)));

        let start = start_daemon(
            "sleep",
            pid_s,
            &[sock_s],
            &format!("{{ sleep 30 </dev/null >/dev/null 2>&1 & echo $! > {pid_s}; }}"),
        );
        assert!(sh(&start), "{start}");
        assert!(!socket.exists(), "the dead daemon's socket is removed");
        let first = pid_in(&pid_file);
        assert_ne!(first, dead.id());
        assert!(sh(&daemon_alive("sleep", pid_s)));

        // Running: not started twice, its files untouched.
        std::fs::write(&socket, b"").unwrap();
        assert!(sh(&start));
        assert_eq!(pid_in(&pid_file), first);
        assert!(socket.exists());

        let stop = stop_daemon("sleep", pid_s);
        assert!(sh(&stop), "{stop}");
        assert!(!sh(&daemon_alive("sleep", pid_s)));
        // Stopping what does not run is no error.
        assert!(sh(&stop));
    }

    #[test]
    fn rejects_a_platform_of_the_wrong_shape() {
        let mut l = list();
        l.nodes.retain(|n| n.name != "stor2");
        let e = build_plan(&l, &input()).unwrap_err();
        assert!(e.to_string().contains("1 storage node"), "{e}");
        let mut l = list();
        l.nodes[1].host_key = None;
        let e = build_plan(&l, &input()).unwrap_err();
        assert!(
            e.to_string().contains("no pinned host key for host2"),
            "{e}"
        );
        let bad_key = SetupInput {
            twofold_public_key: "not a key".into(),
        };
        assert!(build_plan(&list(), &bad_key).is_err());
    }

    /// A start step whose command fails: the report names the node once, quotes what the
    /// command printed on both streams, and does not claim to have undone anything.
    #[tokio::test]
    async fn a_failed_shell_step_reports_its_output_and_that_there_was_nothing_to_undo() {
        use crate::progress::NoProgress;
        use crate::provision::apply::{apply, ApplyCancel, UndoOutcome};
        use crate::provision::plan::LocalRunner;

        let dir = tempfile::tempdir().unwrap();
        let step = |apply_cmd: &str| ShellStep {
            id: "host2/libvirt".into(),
            node: "host2".into(),
            title: "Start libvirt on host2".into(),
            why: String::new(),
            changes: Vec::new(),
            check: "false".into(),
            apply: apply_cmd.into(),
            stdin: None,
            undo: None,
            broken: "libvirt does not answer".into(),
        };
        let ctx = StepCtx::new(LocalRunner::new());
        let mut plan = Plan::new("start");
        plan.push(step(
            "echo starting libvirtd; echo 'cannot bind socket' >&2; exit 1",
        ))
        .unwrap();
        let r = apply(
            &plan,
            &ctx,
            &dir.path().join("db"),
            &NoProgress,
            &ApplyCancel::new(),
        )
        .await
        .unwrap();
        let f = r.failure.clone().unwrap();
        assert_eq!(f.message, "Start libvirt on host2 failed (exit status 1)");
        assert_eq!(f.output, ["starting libvirtd", "cannot bind socket"]);
        assert_eq!(f.undo, UndoOutcome::NothingToUndo);
        let summary = r.summary();
        assert_eq!(summary.matches("host2").count(), 1, "{summary}");
        assert!(
            summary.starts_with("Step 1 of 1 failed: Start libvirt on host2 failed (exit status 1): starting libvirtd / cannot bind socket; nothing to undo."),
            "{summary}"
        );

        // A command that printed nothing says so, instead of ending in an empty reason.
        let mut plan = Plan::new("silent");
        plan.push(step("exit 1")).unwrap();
        let r = apply(
            &plan,
            &ctx,
            &dir.path().join("db"),
            &NoProgress,
            &ApplyCancel::new(),
        )
        .await
        .unwrap();
        let f = r.failure.unwrap();
        assert_eq!(
            f.message,
            "Start libvirt on host2 failed (exit status 1) and printed nothing"
        );
        assert!(f.output.is_empty());
    }
}
