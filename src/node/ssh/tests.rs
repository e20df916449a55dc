//! Against a real sshd (see [`crate::node::test_sshd`]). Password logins are only tested for
//! refusal: a successful one needs an account with a known password, and these tests change
//! no account of the machine they run on (the lab's nodes will have their own).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::*;
use crate::node::test_sshd::{keygen, TestSshd};

const TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on every step of a test, so that a hang fails instead of blocking the run.
const STEP: Duration = Duration::from_secs(30);

async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(STEP, f)
        .await
        .expect("step did not finish within 30 s")
}

async fn connect_key(sshd: &TestSshd, policy: HostKeyPolicy) -> Result<Session> {
    bounded(Session::connect(
        &sshd.target(),
        &Auth::KeyFile(sshd.client_key.clone()),
        &policy,
        TIMEOUT,
    ))
    .await
}

async fn session(sshd: &TestSshd) -> Session {
    connect_key(sshd, HostKeyPolicy::Pinned(sshd.host_key()))
        .await
        .unwrap_or_else(|e| panic!("connect failed: {e}\nsshd log:\n{}", sshd.log()))
}

async fn run(s: &Session, cmd: &str) -> CommandOutput {
    bounded(s.exec(cmd, None)).await.unwrap()
}

#[tokio::test]
async fn key_login_runs_a_command() {
    let sshd = TestSshd::start();
    let s = session(&sshd).await;
    let out = run(&s, "echo hi").await;
    assert_eq!(out.status, 0);
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(out.stderr, b"");
    assert!(out.success());

    let out = run(&s, "echo out; echo err >&2").await;
    assert_eq!(
        (out.stdout_text().as_ref(), out.stderr_text().as_ref()),
        ("out\n", "err\n")
    );
    bounded(s.close()).await;
}

#[tokio::test]
async fn exit_status_and_signal() {
    let sshd = TestSshd::start();
    let s = session(&sshd).await;
    assert_eq!(run(&s, "sh -c 'exit 3'").await.status, 3);
    assert_eq!(run(&s, "false").await.status, 1);
    // Killed by SIGTERM: 128 + 15, as a shell reports it.
    assert_eq!(run(&s, "kill -TERM $$").await.status, 143);
}

#[tokio::test]
async fn stdin_payload() {
    let sshd = TestSshd::start();
    let s = session(&sshd).await;
    let out = bounded(s.exec("tr a-z A-Z", Some(b"hello\n")))
        .await
        .unwrap();
    assert_eq!(out.stdout, b"HELLO\n");

    // Larger than the SSH windows in both directions at once: input is echoed while it is read.
    let big: Vec<u8> = (0..8 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    let out = bounded(s.exec("cat", Some(&big))).await.unwrap();
    assert_eq!(out.status, 0);
    assert!(out.stdout == big, "echoed data differs");

    // A command that does not read its input still reports its status.
    let out = bounded(s.exec("exit 4", Some(&big))).await.unwrap();
    assert_eq!(out.status, 4);

    // No stdin: the command sees end of file at once instead of waiting.
    assert_eq!(run(&s, "wc -c").await.stdout_text().trim(), "0");
}

#[tokio::test]
async fn upload_and_read_back() {
    let sshd = TestSshd::start();
    let s = session(&sshd).await;
    let path = sshd.dir.path().join("uploaded it's.conf");
    let remote = path.to_str().unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    bounded(s.upload(&data, remote, 0o640)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    let out = bounded(s.exec(&format!("cat {}", shell_quote(remote)), None))
        .await
        .unwrap();
    assert!(out.stdout == data);

    // Replacing works and leaves no temporary file behind.
    bounded(s.upload(b"second\n", remote, 0o600)).await.unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second\n");
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o600
    );
    let leftovers: Vec<_> = std::fs::read_dir(sshd.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("twofold-upload"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A folder that does not exist: the remote error comes back.
    let missing = sshd.dir.path().join("no/such/dir/file");
    let err = bounded(s.upload(b"x", missing.to_str().unwrap(), 0o644))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "remote_command", "{err}");
    assert!(err.to_string().contains("No such file"), "{err}");
}

#[tokio::test]
async fn generated_key_installed_twice_then_used() {
    let sshd = TestSshd::start();
    let s = session(&sshd).await;
    // install_key writes to $HOME/.ssh: make sure that is the fixture's folder, not a real home.
    let home = run(&s, "printf %s \"$HOME\"").await;
    assert_eq!(home.stdout_text(), sshd.home.to_str().unwrap());

    let keys = sshd.dir.path().join("keys");
    let (private, public) = bounded(generate_keypair(&keys, "twofold_ed25519"))
        .await
        .unwrap();
    assert_eq!(private, keys.join("twofold_ed25519"));
    assert!(public.starts_with("ssh-ed25519 AAAA"), "{public}");
    assert!(public.ends_with(" twofold_ed25519"), "{public}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&private), 0o600);
    assert_eq!(mode(&keys), 0o700);
    assert_eq!(
        std::fs::read_to_string(keys.join("twofold_ed25519.pub")).unwrap(),
        format!("{public}\n")
    );
    // OpenSSH reads the private key (so `ssh -i` takes it) and derives the same public key.
    let derived = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&private)
        .output()
        .unwrap();
    assert!(derived.status.success(), "{derived:?}");
    assert_eq!(String::from_utf8_lossy(&derived.stdout).trim(), public);
    // Never overwritten.
    let again = bounded(generate_keypair(&keys, "twofold_ed25519"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), "invalid_input");

    // An existing file without a final newline must not get the key glued to its last line.
    let ssh_dir = sshd.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let other =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl other";
    std::fs::write(ssh_dir.join("authorized_keys"), other).unwrap();

    bounded(install_key(&s, &public)).await.unwrap();
    bounded(install_key(&s, &public)).await.unwrap();
    // The same key with another comment counts as present too.
    let material: String = public.split(' ').take(2).collect::<Vec<_>>().join(" ");
    bounded(install_key(&s, &format!("{material} renamed")))
        .await
        .unwrap();

    let text = std::fs::read_to_string(ssh_dir.join("authorized_keys")).unwrap();
    assert_eq!(text, format!("{other}\n{public}\n"));
    assert_eq!(text.matches(&material).count(), 1);
    assert_eq!(mode(&ssh_dir), 0o700);
    assert_eq!(mode(&ssh_dir.join("authorized_keys")), 0o600);

    let err = bounded(install_key(&s, "not a key")).await.unwrap_err();
    assert_eq!(err.code(), "invalid_input");

    // Log in with the new key, from its file and from memory.
    let pinned = HostKeyPolicy::Pinned(sshd.host_key());
    let s2 = bounded(Session::connect(
        &sshd.target(),
        &Auth::KeyFile(private.clone()),
        &pinned,
        TIMEOUT,
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert_eq!(run(&s2, "echo new").await.stdout, b"new\n");
    let pem = std::fs::read_to_string(&private).unwrap();
    let key = russh::keys::decode_secret_key(&pem, None).unwrap();
    let s3 = bounded(Session::connect(
        &sshd.target(),
        &Auth::Key(Arc::new(key)),
        &pinned,
        TIMEOUT,
    ))
    .await
    .unwrap();
    assert_eq!(run(&s3, "echo mem").await.stdout, b"mem\n");
}

#[tokio::test]
async fn first_contact_reports_the_key_ssh_keygen_shows() {
    let sshd = TestSshd::start();
    let s = connect_key(&sshd, HostKeyPolicy::FirstContact)
        .await
        .unwrap();
    let keygen_l = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&sshd.host_key_pub)
        .output()
        .unwrap();
    // "256 SHA256:... test-host (ED25519)"
    let line = String::from_utf8(keygen_l.stdout).unwrap();
    let expected = line.split_whitespace().nth(1).unwrap();
    assert!(expected.starts_with("SHA256:"), "{line}");
    assert_eq!(s.fingerprint(), expected);
    assert_eq!(s.host_key(), sshd.host_key());
    assert_eq!(fingerprint_of(s.host_key()).unwrap(), expected);
}

#[tokio::test]
async fn pinned_key_accepted_and_comment_ignored() {
    let sshd = TestSshd::start();
    let pinned = format!("{} some comment", sshd.host_key());
    let s = connect_key(&sshd, HostKeyPolicy::Pinned(pinned))
        .await
        .unwrap();
    assert_eq!(s.host_key(), sshd.host_key());
    assert_eq!(run(&s, "echo ok").await.stdout, b"ok\n");
}

#[tokio::test]
async fn other_host_key_is_refused_before_login() {
    let sshd = TestSshd::start();
    let other = sshd.dir.path().join("other_host_key");
    keygen(&other, "impostor");
    let pinned = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let err = connect_key(&sshd, HostKeyPolicy::Pinned(pinned.clone()))
        .await
        .unwrap_err();
    match &err {
        Error::HostKeyChanged {
            node,
            expected_fingerprint,
            got_fingerprint,
        } => {
            assert_eq!(node, "testnode");
            assert_eq!(expected_fingerprint, &fingerprint_of(&pinned).unwrap());
            assert_eq!(got_fingerprint, &fingerprint_of(&sshd.host_key()).unwrap());
        }
        e => panic!("expected HostKeyChanged, got {e:?}"),
    }
    assert_eq!(err.code(), "host_key_changed");
    let msg = err.to_string();
    assert!(
        msg.contains("intercept") && msg.contains("reinstalled"),
        "{msg}"
    );
    // sshd saw no login attempt at all.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = sshd.log();
    assert!(
        !log.contains("Accepted") && !log.contains("Failed") && !log.contains("userauth"),
        "{log}"
    );

    // A pinned key that is not a key at all is the user's to fix.
    let err = connect_key(&sshd, HostKeyPolicy::Pinned("garbage".into()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
}

#[tokio::test]
async fn refused_key_and_password_are_auth_failed() {
    let sshd = TestSshd::start();
    let stranger = sshd.dir.path().join("stranger");
    keygen(&stranger, "stranger");
    let pinned = HostKeyPolicy::Pinned(sshd.host_key());
    let err = bounded(Session::connect(
        &sshd.target(),
        &Auth::KeyFile(stranger),
        &pinned,
        TIMEOUT,
    ))
    .await
    .unwrap_err();
    match &err {
        Error::AuthFailed { node, user } => {
            assert_eq!(node, "testnode");
            assert_eq!(user, &sshd.user);
        }
        e => panic!("expected AuthFailed, got {e:?}"),
    }
    assert_eq!(err.code(), "auth_failed");

    // A wrong password for the test user (root's password logins are off in this sshd anyway).
    let password = Secret::new("not-the-password-4711");
    let err = bounded(Session::connect(
        &sshd.target(),
        &Auth::Password(password.clone()),
        &pinned,
        TIMEOUT,
    ))
    .await
    .unwrap_err();
    assert_eq!(err.code(), "auth_failed", "{err}");
    // Neither the error nor the Debug output show the password.
    let auth = Auth::Password(password);
    for shown in [err.to_string(), format!("{auth:?}"), format!("{err:?}")] {
        assert!(!shown.contains("4711"), "{shown}");
    }
}

#[tokio::test]
async fn missing_or_encrypted_key_file_is_reported_before_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        name: "nowhere".into(),
        address: "127.0.0.1".into(),
        port: 9, // never contacted
        user: "root".into(),
    };
    let err = Session::connect(
        &target,
        &Auth::KeyFile(dir.path().join("absent")),
        &HostKeyPolicy::FirstContact,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "io", "{err}");

    let enc = dir.path().join("enc");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a passphrase", "-f"])
        .arg(&enc)
        .status()
        .unwrap();
    assert!(st.success());
    let err = Session::connect(
        &target,
        &Auth::KeyFile(enc),
        &HostKeyPolicy::FirstContact,
        TIMEOUT,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert!(err.to_string().contains("passphrase"), "{err}");
}

#[tokio::test]
async fn closed_port_is_host_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    keygen(&key, "k");
    let target = Target {
        name: "gone".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
    };
    let err = bounded(Session::connect(
        &target,
        &Auth::KeyFile(key),
        &HostKeyPolicy::FirstContact,
        TIMEOUT,
    ))
    .await
    .unwrap_err();
    match &err {
        Error::HostUnreachable { host, detail } => {
            assert_eq!(host, "gone");
            assert!(detail.contains("refused"), "{detail}");
        }
        e => panic!("expected HostUnreachable, got {e:?}"),
    }
}

#[tokio::test]
async fn silent_server_times_out() {
    // Accepts TCP connections (the kernel does, into the backlog) but never says a word.
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    keygen(&key, "k");
    let target = Target {
        name: "mute".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
    };
    let started = Instant::now();
    let err = bounded(Session::connect(
        &target,
        &Auth::KeyFile(key),
        &HostKeyPolicy::FirstContact,
        Duration::from_millis(700),
    ))
    .await
    .unwrap_err();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(600) && took < Duration::from_secs(5),
        "{took:?}"
    );
    match &err {
        Error::HostUnreachable { host, detail } => {
            assert_eq!(host, "mute");
            assert!(detail.contains("0.7 s"), "{detail}");
        }
        e => panic!("expected HostUnreachable, got {e:?}"),
    }
    drop(listener);
}

#[test]
fn secrets_do_not_print() {
    let s = Secret::new("hunter2");
    assert_eq!(format!("{s}"), "***");
    assert_eq!(format!("{s:?}"), "***");
    assert_eq!(s.expose(), "hunter2");
    let read: Secret = serde_json::from_str(r#""hunter2""#).unwrap();
    assert_eq!(
        (read.expose(), format!("{read:?}").as_str()),
        ("hunter2", "***")
    );
    assert!(serde_json::from_str::<Secret>("42").is_err());
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (private, _) = rt.block_on(generate_keypair(dir.path(), "k")).unwrap();
    let pem = std::fs::read_to_string(&private).unwrap();
    let key = russh::keys::decode_secret_key(&pem, None).unwrap();
    let shown = format!("{:?}", Auth::Key(Arc::new(key)));
    assert!(shown.starts_with("Key(SHA256:"), "{shown}");
}

#[tokio::test]
async fn pinned_key_of_another_type_is_asked_for() {
    // The server has an ed25519 and an ECDSA host key and would show ed25519 by default.
    let sshd = TestSshd::start();
    let ecdsa = std::fs::read_to_string(sshd.dir.path().join("host_ecdsa_key.pub")).unwrap();
    let s = connect_key(&sshd, HostKeyPolicy::Pinned(ecdsa.clone()))
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", sshd.log()));
    assert!(s.host_key().starts_with("ecdsa-sha2-nistp256 "));
    assert_eq!(s.fingerprint(), fingerprint_of(&ecdsa).unwrap());
}

#[tokio::test]
async fn scan_reads_the_host_key_without_logging_in() {
    let sshd = TestSshd::start();
    let scanned = bounded(scan_host_key(&sshd.target(), TIMEOUT))
        .await
        .unwrap();
    assert_eq!(scanned.key, sshd.host_key());
    assert_eq!(
        scanned.fingerprint,
        fingerprint_of(&sshd.host_key()).unwrap()
    );
    assert!(scanned.fingerprint.starts_with("SHA256:"));
    // The scan never authenticated: sshd saw no accepted login.
    assert!(!sshd.log().contains("Accepted"), "{}", sshd.log());
}

#[tokio::test]
async fn scan_of_a_closed_port_is_unreachable() {
    let sshd = TestSshd::start();
    let mut target = sshd.target();
    drop(sshd);
    target.port = 1; // nothing listens on port 1 as an unprivileged loopback service
    let err = bounded(scan_host_key(&target, TIMEOUT)).await.unwrap_err();
    assert_eq!(err.code(), "host_unreachable", "{err}");
}

#[test]
fn a_failed_commands_tail_is_bounded_and_keeps_both_streams() {
    let many: String = (1..=25).map(|i| format!("line {i}\n")).collect();
    let out = CommandOutput {
        status: 1,
        stdout: many.into_bytes(),
        stderr: format!("\n{}\nlast words\n", "x".repeat(1000)).into_bytes(),
    };
    let tail = out.tail();
    assert_eq!(tail[0], "... (15 earlier line(s) left out)");
    assert_eq!(tail[1], "line 16");
    assert_eq!(tail[10], "line 25");
    assert_eq!(tail[11], format!("{}...", "x".repeat(TAIL_LINE_CHARS)));
    assert_eq!(tail[12], "last words");
    assert_eq!(tail.len(), 13);
    let e = out.error("stor1", "writing /etc/hosts");
    assert_eq!(e.command_output(), tail.as_slice());
    assert!(
        e.to_string()
            .starts_with("writing /etc/hosts on stor1 failed (exit status 1): ... (15"),
        "{e}"
    );

    let silent = CommandOutput {
        status: 1,
        stdout: Vec::new(),
        stderr: b"\n  \n".to_vec(),
    };
    assert!(silent.tail().is_empty());
    assert!(silent
        .error("host2", "Start libvirt on host2")
        .to_string()
        .ends_with("failed (exit status 1) and printed nothing"));
}
