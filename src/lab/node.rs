//! One lab node's life: its state folder, keys and config, its namespaces and veth, starting it
//! (node-init.sh becomes its anchor process) and stopping every process it has.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cmd;
use super::{DaemonStatus, Lab, LabNode, BRIDGE, NETNS_PREFIX, NODES, PREFIX_LEN, VETH_PREFIX};
use zeroize::Zeroizing;

use crate::error::{Error, IoContext, Result};
use crate::node::Secret;
use crate::nodes::Role;

const NODE_INIT: &str = include_str!("../../resources/lab/node-init.sh");

pub fn ensure_admin_key(lab: &Lab) -> Result<()> {
    let key = lab.admin_key();
    if !key.exists() {
        keygen(&key, "twofold-admin")?;
    }
    Ok(())
}

fn keygen(path: &Path, comment: &str) -> Result<()> {
    let p = path.to_string_lossy();
    cmd::run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", &p],
    )?;
    Ok(())
}

/// A fresh state folder: sshd config and host key, root's key pair, a private /etc/libvirt.
pub fn prepare_dir(lab: &Lab, n: &LabNode, hide_kvm: bool, bare: bool) -> Result<()> {
    let dir = lab.node_dir(n.name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).ctx(|| format!("removing old {}", dir.display()))?;
    }
    for sub in ["ssh", "root/.ssh", "var-lib-glusterd", "srv/twofold/bricks"] {
        std::fs::create_dir_all(dir.join(sub)).ctx(|| format!("creating {}", dir.display()))?;
    }
    set_mode(&dir.join("root/.ssh"), 0o700)?;
    keygen(&dir.join("ssh/ssh_host_ed25519_key"), n.name)?;
    if bare {
        // A bare node is a freshly installed machine: root logs in with a password, and
        // provisioning brings the keys.
        write_shadow(lab, &dir)?;
    } else {
        keygen(
            &dir.join("root/.ssh/id_ed25519"),
            &format!("root@{}", n.name),
        )?;
    }
    std::fs::write(dir.join("init.sh"), NODE_INIT).ctx(|| "writing node-init.sh".into())?;
    if hide_kvm {
        std::fs::write(dir.join("hide-kvm"), b"").ctx(|| "writing hide-kvm".into())?;
    }
    let d = dir.display();
    std::fs::write(
        dir.join("sshd_config"),
        format!(
            "ListenAddress {ip}\nPort 22\nHostKey {d}/ssh/ssh_host_ed25519_key\nPidFile /run/sshd.pid\n\
             PermitRootLogin {root_login}\nPasswordAuthentication {password}\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nAuthorizedKeysFile .ssh/authorized_keys\nUsePAM no\nStrictModes no\n\
             UseDNS no\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
            ip = n.ip(),
            root_login = if bare { "yes" } else { "prohibit-password" },
            password = if bare { "yes" } else { "no" },
        ),
    )
    .ctx(|| "writing sshd_config".into())?;

    // A private /etc/libvirt: own host UUID (libvirt refuses to migrate between hosts with the
    // same UUID), own persistent domain definitions, and QEMU's migration address. A lab node
    // is already a namespace of its own: libvirt's per-VM mount namespace (a private /dev) is off,
    // and so is the security driver (no AppArmor/SELinux inside the lab).
    let etc = dir.join("etc-libvirt");
    cmd::run("cp", &["-a", "/etc/libvirt", &etc.to_string_lossy()])?;
    let qemu_dir = etc.join("qemu");
    for entry in std::fs::read_dir(&qemu_dir).ctx(|| "reading etc-libvirt/qemu".into())? {
        let entry = entry.ctx(|| "reading etc-libvirt/qemu".into())?;
        if entry.path().extension().is_some_and(|e| e == "xml") {
            std::fs::remove_file(entry.path()).ctx(|| "cleaning domain definitions".into())?;
        }
    }
    let uuid = uuid::Uuid::new_v4();
    append(
        &etc.join("libvirtd.conf"),
        &format!(
            "\n# twofold lab\nhost_uuid = \"{uuid}\"\nlisten_tcp = 0\nlisten_tls = 0\n\
             keepalive_interval = 5\nkeepalive_count = 5\nlog_outputs = \"3:file:/var/log/libvirt/libvirtd.log\"\n"
        ),
    )?;
    append(
        &etc.join("qemu.conf"),
        &format!(
            "\n# twofold lab\nmigration_host = \"{ip}\"\nmigration_address = \"{ip}\"\n\
             security_driver = \"none\"\nnamespaces = []\n",
            ip = n.ip()
        ),
    )?;
    // glusterd's shipped option groups and hooks, in its private state folder.
    for sub in ["groups", "hooks"] {
        let src = Path::new("/var/lib/glusterd").join(sub);
        if src.exists() {
            cmd::run(
                "cp",
                &[
                    "-a",
                    &src.to_string_lossy(),
                    &dir.join("var-lib-glusterd").to_string_lossy(),
                ],
            )?;
        }
    }
    Ok(())
}

/// Every node trusts the admin key; hosts trust each other's root keys (peer-to-peer migration);
/// every node and the admin pin every node's host key; names resolve through a lab /etc/hosts.
pub fn write_trust(lab: &Lab, bare: bool) -> Result<()> {
    let admin_pub = read_trim(&lab.admin_key().with_extension("pub"))?;
    let mut known = String::new();
    let mut hosts = String::from("127.0.0.1 localhost\n");
    for n in NODES {
        let host_pub = read_trim(&lab.node_dir(n.name).join("ssh/ssh_host_ed25519_key.pub"))?;
        let key: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        known.push_str(&format!("{},{} {}\n", n.ip(), n.name, key.join(" ")));
        hosts.push_str(&format!("{} {}\n", n.ip(), n.name));
    }
    crate::files::replace_if_changed(&lab.known_hosts(), known.as_bytes(), 0o644)?;
    for n in NODES {
        let dir = lab.node_dir(n.name);
        std::fs::write(dir.join("hosts"), &hosts).ctx(|| "writing a node's hosts".into())?;
        if bare {
            // Nothing trusted yet: provisioning installs keys and pins host keys.
            std::fs::write(dir.join("root/.ssh/authorized_keys"), "")
                .ctx(|| "writing authorized_keys".into())?;
            continue;
        }
        let mut auth = format!("{admin_pub}\n");
        if n.role == Role::Host {
            for peer in NODES.iter().filter(|p| p.role == Role::Host) {
                auth.push_str(&read_trim(
                    &lab.node_dir(peer.name).join("root/.ssh/id_ed25519.pub"),
                )?);
                auth.push('\n');
            }
        }
        std::fs::write(dir.join("root/.ssh/authorized_keys"), auth)
            .ctx(|| "writing authorized_keys".into())?;
        std::fs::write(dir.join("root/.ssh/known_hosts"), &known)
            .ctx(|| "writing a node's known_hosts".into())?;
    }
    Ok(())
}

pub fn ensure_bridge() -> Result<()> {
    if !cmd::ok("ip", &["link", "show", BRIDGE]) {
        cmd::run("ip", &["link", "add", BRIDGE, "type", "bridge"])?;
    }
    let addr = format!("{}/{}", super::bridge_ip(), PREFIX_LEN);
    let shown = cmd::run("ip", &["-br", "addr", "show", BRIDGE])?;
    if !shown.contains(&addr) {
        cmd::run("ip", &["addr", "add", &addr, "dev", BRIDGE])?;
    }
    cmd::run("ip", &["link", "set", BRIDGE, "up"])?;
    Ok(())
}

pub fn create_netns(n: &LabNode) -> Result<()> {
    let ns = n.netns();
    let veth = n.veth();
    cmd::run("ip", &["netns", "add", &ns])?;
    cmd::run(
        "ip",
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
    )?;
    cmd::run("ip", &["link", "set", &veth, "master", BRIDGE, "up"])?;
    let addr = format!("{}/{}", n.ip(), PREFIX_LEN);
    cmd::run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
    cmd::run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
    cmd::run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Start the node: node-init.sh in the node's network namespace and a new mount + UTS namespace.
pub fn spawn(lab: &Lab, n: &LabNode, bare: bool) -> Result<()> {
    let dir = lab.node_dir(n.name);
    let log = std::fs::File::create(dir.join("init.log")).ctx(|| "creating init.log".into())?;
    let role = if bare { "bare" } else { n.role.as_str() };
    Command::new("ip")
        .args(["netns", "exec", &n.netns(), "unshare", "--mount", "--uts"])
        .args(["--propagation", "private", "setsid", "/bin/sh"])
        .arg(dir.join("init.sh"))
        .args([n.name, role])
        .arg(&dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().ctx(|| "init.log".into())?)
        .stderr(log)
        .spawn()
        .map_err(|e| Error::Lab(format!("cannot start node {}: {e}", n.name)))?;
    Ok(())
}

/// Wait until the node's anchor, sshd and (on hosts) libvirtd answer.
pub fn wait_ready(lab: &Lab, n: &LabNode, bare: bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let init_log = lab.node_dir(n.name).join("init.log");
    let fail = |what: &str| {
        let log = std::fs::read_to_string(&init_log).unwrap_or_default();
        Error::Lab(format!(
            "node {} did not come up: {what}. Its start log says: {}",
            n.name,
            log.trim()
        ))
    };
    while lab.anchor_pid(n.name).is_none() {
        if Instant::now() > deadline {
            return Err(fail("no anchor process"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ssh = SocketAddr::new(n.ip().into(), 22);
    while TcpStream::connect_timeout(&ssh, Duration::from_millis(300)).is_err() {
        if Instant::now() > deadline {
            return Err(fail("sshd does not answer"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !bare && n.role == Role::Host {
        loop {
            let ready = lab
                .exec_output(n.name, &["virsh", "-c", "qemu:///system", "version"])
                .is_ok();
            if ready {
                break;
            }
            if Instant::now() > deadline {
                return Err(fail("libvirtd does not answer"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(())
}

/// Which of the node's daemons run (by process name within its network namespace).
pub fn daemons(n: &LabNode, bare: &bool) -> Vec<DaemonStatus> {
    let names: &[&str] = match (n.role, *bare) {
        (_, true) => &["sshd"],
        (Role::Host, false) => &["sshd", "libvirtd", "virtlogd", "virtlockd"],
        (Role::Storage, false) => &["sshd", "glusterd", "glusterfsd"],
    };
    let comms: Vec<String> = netns_pids(&n.netns())
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    names
        .iter()
        .map(|d| DaemonStatus {
            name: d.to_string(),
            running: comms.iter().any(|c| c == d),
        })
        .collect()
}

pub fn lab_netns() -> Vec<String> {
    cmd::run("ip", &["netns", "list"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NETNS_PREFIX))
        .map(String::from)
        .collect()
}

pub fn lab_links() -> Vec<String> {
    cmd::run("ip", &["-o", "link", "show"])
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|s| s.trim().split('@').next().unwrap_or("").to_string())
        .filter(|n| n.starts_with(VETH_PREFIX))
        .collect()
}

/// Live processes in a network namespace. Zombies are left out: they are dead, only waiting for
/// a parent to reap them, and no signal moves them.
pub fn netns_pids(ns: &str) -> Vec<u32> {
    cmd::run("ip", &["netns", "pids", ns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .filter(|p| !is_zombie(*p))
        .collect()
}

pub fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // The state follows the command name, which is in parentheses and may hold spaces.
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st == "Z"))
        })
        .unwrap_or(false)
}

/// Every process of every lab node: those in the lab's network namespaces, and anchors whose
/// namespace is already gone (a crash between deleting a namespace and killing its processes).
fn all_node_pids(lab: &Lab) -> Vec<u32> {
    let mut pids: Vec<u32> = lab_netns().iter().flat_map(|ns| netns_pids(ns)).collect();
    for n in NODES {
        if let Some(p) = lab.anchor_pid(n.name) {
            pids.push(p);
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Power every node off: TERM, a short grace period, then KILL, until nothing is left.
pub fn kill_all(lab: &Lab) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut signal = "-TERM";
    let grace = Instant::now() + Duration::from_secs(3);
    loop {
        let pids = all_node_pids(lab);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        if Instant::now() > grace {
            signal = "-KILL";
        }
        signal_pids(&pids, signal);
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn signal_pids(pids: &[u32], signal: &str) {
    let mut args = vec![signal.to_string()];
    args.extend(pids.iter().map(u32::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    cmd::ok("kill", &refs);
}

/// Stop a few processes: TERM, then KILL after two seconds.
pub fn kill_pids(pids: &[u32]) {
    signal_pids(pids, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if pids
            .iter()
            .all(|p| !Path::new(&format!("/proc/{p}")).exists())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_pids(pids, "-KILL");
}

/// `ip netns add` turns /run/netns into a mount point; give it back when no namespace is left.
pub fn release_netns_mount() {
    let empty = cmd::run("ip", &["netns", "list"])
        .map(|s| s.trim().is_empty())
        .unwrap_or(false);
    if empty && cmd::ok("mountpoint", &["-q", "/run/netns"]) {
        cmd::ok("umount", &["/run/netns"]);
    }
}

/// What the lab would have left behind, for `down` to report.
pub fn leftovers(lab: &Lab) -> Vec<String> {
    let mut left: Vec<String> = lab_netns()
        .into_iter()
        .map(|n| format!("namespace {n}"))
        .collect();
    left.extend(lab_links().into_iter().map(|l| format!("link {l}")));
    if cmd::ok("ip", &["link", "show", BRIDGE]) {
        left.push(format!("bridge {BRIDGE}"));
    }
    left.extend(
        all_node_pids(lab)
            .into_iter()
            .map(|p| format!("process {p}")),
    );
    left
}

fn read_trim(p: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(p)
        .ctx(|| format!("reading {}", p.display()))?
        .trim()
        .to_string())
}

fn append(p: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(p)
        .ctx(|| format!("opening {}", p.display()))?;
    f.write_all(text.as_bytes())
        .ctx(|| format!("writing {}", p.display()))
}

fn set_mode(p: &Path, mode: u32) -> Result<()> {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .ctx(|| format!("setting permissions of {}", p.display()))
}

/// The lab's root password for bare nodes: made once, kept in the lab folder where only root may
/// read it (0600, even when the file was already there with other permissions).
pub fn root_password(lab: &Lab) -> Result<Secret> {
    let path = lab.dir.join("root-password");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            if !text.trim().is_empty() {
                set_mode(&path, 0o600)?;
                return Ok(Secret::new(text.trim()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    }
    let password = Secret::new(&uuid::Uuid::new_v4().simple().to_string()[..20]);
    write_private(&path, password.expose().as_bytes())?;
    Ok(password)
}

/// A private /etc/shadow for a bare node, bound over the real one inside the node: root's entry
/// with the lab's password and nothing else (the accounts of this machine stay out of the lab).
fn write_shadow(lab: &Lab, dir: &Path) -> Result<()> {
    let password = root_password(lab)?;
    let hash = hash_password(&password)?;
    write_private(
        &dir.join("shadow"),
        shadow_text(&hash, days_since_epoch()).as_bytes(),
    )
}

/// The shadow(5) line of root: the hash, changed `days` after 1970, no minimum age, the usual
/// maximum and warning period, never expiring.
fn shadow_text(hash: &str, days: u64) -> String {
    format!("root:{hash}:{days}:0:99999:7:::\n")
}

fn days_since_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400)
}

/// A SHA-512 crypt hash of the password (`$6$...`), by openssl, the password on its stdin.
fn hash_password(password: &Secret) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["passwd", "-6", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Lab(format!("cannot run openssl to hash the lab password: {e}")))?;
    let mut line = Zeroizing::new(password.expose().to_string());
    line.push('\n');
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(line.as_bytes()),
        None => Err(std::io::Error::other("openssl has no stdin")),
    };
    let out = child
        .wait_with_output()
        .ctx(|| "hashing the lab password".into())?;
    written.ctx(|| "hashing the lab password".into())?;
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !hash.starts_with("$6$") || hash.contains([':', '\n']) {
        return Err(Error::Lab(format!(
            "openssl did not hash the lab password ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(hash)
}

/// Write a file only root may read. The permissions are set before anything is written, also
/// when the file was already there with wider ones.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .ctx(|| format!("writing {}", path.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| f.write_all(data))
        .and_then(|()| f.sync_all())
        .ctx(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab_in(dir: &Path) -> Lab {
        Lab {
            dir: dir.to_path_buf(),
        }
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn root_password_is_private_even_in_an_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        let path = dir.path().join("root-password");
        let made = root_password(&lab).unwrap();
        assert_eq!(made.expose().len(), 20);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(root_password(&lab).unwrap().expose(), made.expose());

        // A file that is there already, readable by everyone: kept, and made private.
        std::fs::write(&path, "old-password\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(root_password(&lab).unwrap().expose(), "old-password");
        assert_eq!(mode(&path), 0o600);

        // An empty one is replaced by a new password, also private.
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let new = root_password(&lab).unwrap();
        assert_eq!(new.expose().len(), 20);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new.expose());
    }

    #[test]
    fn shadow_holds_only_root_with_the_lab_password() {
        let dir = tempfile::tempdir().unwrap();
        let lab = lab_in(dir.path());
        let node = dir.path().join("node");
        std::fs::create_dir(&node).unwrap();
        std::fs::write(node.join("shadow"), "someone:$6$x$y:1:0:99999:7:::\n").unwrap();
        std::fs::set_permissions(node.join("shadow"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        write_shadow(&lab, &node).unwrap();
        let text = std::fs::read_to_string(node.join("shadow")).unwrap();
        assert_eq!(mode(&node.join("shadow")), 0o600);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let fields: Vec<&str> = lines[0].split(':').collect();
        assert_eq!(fields.len(), 9, "{text}");
        assert_eq!(fields[0], "root");
        assert!(fields[1].starts_with("$6$"), "{text}");
        assert_eq!(fields[2], days_since_epoch().to_string());
        // The hash is of the lab's password: openssl gives the same hash for the same salt.
        let salt = fields[1].split('$').nth(2).unwrap();
        let mut child = Command::new("openssl")
            .args(["passwd", "-6", "-salt", salt, "-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let password = root_password(&lab).unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            format!("{}\n", password.expose()).as_bytes(),
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), fields[1]);
    }
}
