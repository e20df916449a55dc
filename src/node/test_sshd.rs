//! A real OpenSSH server for tests: `/usr/sbin/sshd -D -e` on 127.0.0.1 and a free port, with
//! its own host key, config and authorized keys in a temporary folder, killed when the guard is
//! dropped. Sessions get `HOME` set to a folder inside it (`SetEnv`), so code that writes to
//! `~/.ssh` never touches the real account's files.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::ssh::Target;

const SSHD: &str = "/usr/sbin/sshd";

pub(crate) struct TestSshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The login: the user running the tests (sshd can only log in as itself unless root).
    pub user: String,
    /// `HOME` of the sessions; `HOME/.ssh/authorized_keys` is read by sshd as well.
    pub home: PathBuf,
    pub host_key_pub: PathBuf,
    /// A client key listed in the server's authorized keys.
    pub client_key: PathBuf,
    child: Child,
    log: PathBuf,
}

/// Sessions of an isolated server run in a network namespace of their own with nothing
/// listening and an empty `/run`: what the tests check about a node's daemons (ports, sockets)
/// then never depends on what else runs on this machine.
const ISOLATED: &str = "ForceCommand exec unshare --net --mount --propagation private sh -c 'mount -t tmpfs twofold-test /run && exec sh -c \"$SSH_ORIGINAL_COMMAND\"'\n";

impl TestSshd {
    pub fn start() -> TestSshd {
        Self::start_with("")
    }

    /// A server whose sessions see no daemon of this machine (see [`ISOLATED`]); needs root, as
    /// the status tests that use it do.
    pub fn start_isolated() -> TestSshd {
        Self::start_with(ISOLATED)
    }

    fn start_with(extra_config: &str) -> TestSshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: apt-get install openssh-server"
        );
        // sshd insists on its privilege separation folder, which only the ssh service creates.
        std::fs::create_dir_all("/run/sshd").expect("creating /run/sshd");

        let dir = tempfile::Builder::new()
            .prefix("twofold-sshd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path().to_path_buf();
        let home = d.join("home");
        std::fs::create_dir_all(&home).unwrap();
        keygen(&d.join("host_ed25519_key"), "test-host");
        keygen_type(&d.join("host_ecdsa_key"), "ecdsa", "test-host");
        let client_key = d.join("client_ed25519");
        keygen(&client_key, "test-client");
        std::fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys")).unwrap();
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();

        let log = d.join("sshd.log");
        let config = d.join("sshd_config");
        for _attempt in 0..5 {
            let port = free_port();
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {d}/host_ed25519_key\nHostKey {d}/host_ecdsa_key\nPidFile none\n\
                     UsePAM no\nStrictModes no\nUseDNS no\nPermitRootLogin prohibit-password\n\
                     PubkeyAuthentication yes\nPasswordAuthentication yes\nKbdInteractiveAuthentication no\n\
                     AuthorizedKeysFile {d}/authorized_keys {home}/.ssh/authorized_keys\n\
                     SetEnv HOME={home}\nLogLevel VERBOSE\n{extra_config}",
                    d = d.display(),
                    home = home.display()
                ),
            )
            .unwrap();
            let log_file = std::fs::File::create(&log).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("starting sshd");
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return TestSshd {
                        dir,
                        port,
                        user,
                        home,
                        host_key_pub: d.join("host_ed25519_key.pub"),
                        client_key,
                        child,
                        log,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("Address already in use") {
                        break; // another process took the port meanwhile: try another one
                    }
                    panic!("sshd exited ({status}):\n{text}");
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "sshd did not listen on port {port} within 10 s:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free port for sshd after 5 attempts");
    }

    pub fn target(&self) -> Target {
        Target {
            name: "testnode".into(),
            address: "127.0.0.1".into(),
            port: self.port,
            user: self.user.clone(),
        }
    }

    /// The host key as `type base64`, the way it is pinned.
    pub fn host_key(&self) -> String {
        let text = std::fs::read_to_string(&self.host_key_pub).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// What sshd wrote so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl TestSshd {
    /// Stop this sshd and every session it serves, as a power cut would (the per-connection
    /// processes outlive the listener otherwise).
    pub fn cut(mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("pkill").args(["-KILL", "-P", &pid]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ssh-keygen` a passphrase-less ed25519 key pair (`path`, `path.pub`).
pub(crate) fn keygen(path: &Path, comment: &str) {
    keygen_type(path, "ed25519", comment);
}

pub(crate) fn keygen_type(path: &Path, key_type: &str, comment: &str) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("running ssh-keygen");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn free_port() -> u16 {
    TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
