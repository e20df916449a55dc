//! One SSH connection to one node (russh, async): connecting with a password or a key, checking
//! the node's host key against the pinned one before anything is sent, running commands with
//! their exit status and output, uploading files, and Twofold's own ed25519 key pairs.
//!
//! Secrets never reach the logs: passwords are [`Secret`]s, keys are logged by fingerprint only,
//! and callers pass secret payloads on a command's stdin, never on its command line (which is
//! logged at debug level).

use std::borrow::Cow;
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use russh::client;
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{
    Algorithm, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate,
};
use russh::{ChannelMsg, Sig};
use tokio::time::Instant;
use tracing::{debug, info, warn};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, IoContext, Result};
use crate::nodes::NodeSpec;
use crate::shell::shell_quote;

/// A password or another secret: `Debug` and `Display` print `***`, and the memory is wiped when
/// it is dropped.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    /// The secret itself, for the one place that has to send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A secret arrives from the desktop window as a plain JSON string. There is deliberately no
/// `Serialize`: a secret cannot end up in a saved file or a log by accident.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Secret, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// How to log in.
#[derive(Clone)]
pub enum Auth {
    Password(Secret),
    /// A private key file without passphrase (OpenSSH, PEM or PuTTY format).
    KeyFile(PathBuf),
    /// A private key already in memory (see [`russh::keys::decode_secret_key`]).
    Key(Arc<PrivateKey>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password(p) => write!(f, "Password({p:?})"),
            Auth::KeyFile(path) => write!(f, "KeyFile({})", path.display()),
            Auth::Key(k) => write!(f, "Key({})", k.fingerprint(HashAlg::Sha256)),
        }
    }
}

/// What the node's host key must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// The key pinned earlier, in OpenSSH form (`ssh-ed25519 AAAA...`, a comment may follow).
    /// Any other key stops the connection before authentication.
    Pinned(String),
    /// First contact: accept the key the server presents and report it
    /// ([`Session::host_key`], [`Session::fingerprint`]) so that the user can confirm and pin it.
    FirstContact,
}

impl HostKeyPolicy {
    /// The node's pinned key if the node list has one, first contact otherwise.
    pub fn for_node(node: &NodeSpec) -> HostKeyPolicy {
        match &node.host_key {
            Some(k) => HostKeyPolicy::Pinned(k.clone()),
            None => HostKeyPolicy::FirstContact,
        }
    }
}

/// Where to connect: the node's name (for messages), address, SSH port and login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
}

impl From<&NodeSpec> for Target {
    fn from(n: &NodeSpec) -> Target {
        Target {
            name: n.name.clone(),
            address: n.address.clone(),
            port: n.ssh_port,
            user: n.user.clone(),
        }
    }
}

impl Target {
    fn endpoint(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// What a remote command returned. A command killed by a signal gets 128 + the signal's number,
/// as a shell reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandOutput {
    pub status: u32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl CommandOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }

    pub fn stdout_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    pub fn stderr_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// The last lines the command printed: stdout's, then stderr's (the order within each
    /// stream is kept; how the two interleaved is not known), at most [`TAIL_LINES`] of each,
    /// each cut to [`TAIL_LINE_CHARS`] characters, blank lines dropped. A line saying how many
    /// earlier lines were left out comes first when some were.
    pub fn tail(&self) -> Vec<String> {
        let mut out = Vec::new();
        for text in [self.stdout_text(), self.stderr_text()] {
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty())
                .collect();
            let skip = lines.len().saturating_sub(TAIL_LINES);
            if skip > 0 {
                out.push(format!("... ({skip} earlier line(s) left out)"));
            }
            for l in &lines[skip..] {
                out.push(match l.char_indices().nth(TAIL_LINE_CHARS) {
                    Some((cut, _)) => format!("{}...", &l[..cut]),
                    None => l.to_string(),
                });
            }
        }
        out
    }

    /// The error for this output of a command that failed: `what` (like "writing /etc/hosts")
    /// on `node`, its status and the tail of what it printed.
    pub fn error(&self, node: &str, what: &str) -> Error {
        Error::RemoteCommand {
            node: node.to_string(),
            what: what.to_string(),
            status: self.status,
            output: self.tail(),
        }
    }
}

/// Lines of each stream a failed command's error quotes.
pub const TAIL_LINES: usize = 10;
/// Characters of each quoted line.
pub const TAIL_LINE_CHARS: usize = 300;

/// An authenticated SSH connection to one node. Dropping it closes the connection.
pub struct Session {
    node: String,
    user: String,
    host_key: String,
    fingerprint: String,
    handle: client::Handle<Verifier>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("node", &self.node)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Connect, check the host key against `policy`, then log in. `timeout` bounds all three
    /// (name lookup and TCP connect, SSH handshake, authentication); commands run afterwards are
    /// not bounded by it.
    pub async fn connect(
        target: &Target,
        auth: &Auth,
        policy: &HostKeyPolicy,
        timeout: Duration,
    ) -> Result<Session> {
        let pinned = match policy {
            HostKeyPolicy::Pinned(k) => Some(parse_public_key(k).map_err(|e| {
                Error::InvalidInput(format!(
                    "the pinned host key of {} is not an OpenSSH public key ({e}); it looks like 'ssh-ed25519 AAAA...'. Fix host_key in the node list, or remove it to connect as a first contact",
                    target.name
                ))
            })?),
            HostKeyPolicy::FirstContact => None,
        };
        // A key the user has to fix is reported before the node is contacted.
        let credential = match auth {
            Auth::Password(p) => Credential::Password(p),
            Auth::KeyFile(path) => Credential::Key(Arc::new(load_key_file(path.clone()).await?)),
            Auth::Key(k) => Credential::Key(Arc::clone(k)),
        };

        let deadline = Instant::now() + timeout;
        let endpoint = target.endpoint();
        let host_unreachable = |detail: String| Error::HostUnreachable {
            host: target.name.clone(),
            detail,
        };
        let secs = format_duration(timeout);
        let (mut handle, server_key) =
            handshake(target, pinned.as_ref(), deadline, timeout).await?;
        let host_key = openssh_without_comment(&server_key);
        let fingerprint = server_key.fingerprint(HashAlg::Sha256).to_string();
        if pinned.is_none() {
            info!(node = %target.name, %fingerprint, "first contact: host key not pinned yet");
        }

        let login = async {
            match &credential {
                Credential::Password(password) => {
                    debug!(node = %target.name, user = %target.user, "password authentication");
                    handle
                        .authenticate_password(target.user.as_str(), password.expose())
                        .await
                }
                Credential::Key(k) => {
                    debug!(node = %target.name, user = %target.user, key = %k.fingerprint(HashAlg::Sha256), "public key authentication");
                    let hash = if k.algorithm().is_rsa() {
                        handle
                            .best_supported_rsa_hash()
                            .await?
                            .unwrap_or(Some(HashAlg::Sha256))
                    } else {
                        None
                    };
                    handle
                        .authenticate_publickey(
                            target.user.as_str(),
                            PrivateKeyWithHashAlg::new(Arc::clone(k), hash),
                        )
                        .await
                }
            }
        };
        match tokio::time::timeout_at(deadline, login).await {
            Err(_) => {
                return Err(host_unreachable(format!(
                    "{endpoint} did not answer the login within {secs}"
                )))
            }
            Ok(Err(e)) => {
                return Err(Error::Ssh {
                    node: target.name.clone(),
                    detail: format!("logging in as '{}' failed: {e}", target.user),
                })
            }
            Ok(Ok(client::AuthResult::Success)) => {}
            Ok(Ok(_)) => {
                warn!(node = %target.name, user = %target.user, "login refused");
                return Err(Error::AuthFailed {
                    node: target.name.clone(),
                    user: target.user.clone(),
                });
            }
        }
        info!(node = %target.name, user = %target.user, %fingerprint, "SSH connected");
        Ok(Session {
            node: target.name.clone(),
            user: target.user.clone(),
            host_key,
            fingerprint,
            handle,
        })
    }

    /// The node's name, as given in the target.
    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The server's host key in OpenSSH form (`ssh-ed25519 AAAA...`), the string to pin.
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The host key's SHA-256 fingerprint as `ssh-keygen -lf` prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Run `command` through the user's login shell on the node, send `stdin` (then end of file),
    /// and collect the exit status and both outputs. A non-zero exit status is not an error here;
    /// a connection that breaks before the command ends is.
    pub async fn exec(&self, command: &str, stdin: Option<&[u8]>) -> Result<CommandOutput> {
        debug!(node = %self.node, command, stdin_bytes = stdin.map_or(0, <[u8]>::len), "exec");
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(|e| self.ssh_error(format!("opening a session channel failed: {e}")))?;
        channel
            .exec(true, command)
            .await
            .map_err(|e| self.ssh_error(format!("starting a command failed: {e}")))?;
        let (mut rx, tx) = channel.split();

        // Stdin is written while the output is read: a command that answers before it has read
        // all its input would otherwise block both sides once the windows are full. The command
        // may also end without reading it all; then the rest is dropped.
        let write = async {
            if let Some(data) = stdin {
                tx.data(data).await?;
            }
            tx.eof().await
        };
        let read = async {
            let mut out = CommandOutput::default();
            let mut status = None;
            let mut refused = false;
            while let Some(msg) = rx.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => {
                        out.stderr.extend_from_slice(&data)
                    }
                    ChannelMsg::ExitStatus { exit_status } => status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = Some(128 + signal_number(&signal_name))
                    }
                    ChannelMsg::Failure => {
                        refused = true;
                        break;
                    }
                    _ => {}
                }
            }
            (out, status, refused)
        };
        tokio::pin!(write, read);
        let mut written = None;
        let (mut out, status, refused) = loop {
            tokio::select! {
                w = &mut write, if written.is_none() => written = Some(w),
                r = &mut read => break r,
            }
        };
        if refused {
            return Err(self.ssh_error("the SSH server refused to run a command".to_string()));
        }
        match (status, written) {
            (Some(status), written) => {
                if !matches!(written, Some(Ok(()))) {
                    debug!(node = %self.node, "the command ended before it read all its input");
                }
                out.status = status;
                debug!(node = %self.node, status, "exec done");
                Ok(out)
            }
            (None, Some(Err(e))) => Err(self.ssh_error(format!(
                "sending input to a command failed: {e}; the connection may have dropped"
            ))),
            (None, _) => Err(self.ssh_error(
                "the connection closed before the command reported its exit status".to_string(),
            )),
        }
    }

    /// Write `data` to `remote_path` with permissions `mode` (e.g. `0o644`). The file is written
    /// under a temporary name and renamed, so readers never see half a file; the directory must
    /// exist.
    pub async fn upload(&self, data: &[u8], remote_path: &str, mode: u32) -> Result<()> {
        if remote_path.is_empty() || remote_path.ends_with('/') {
            return Err(Error::InvalidInput(format!(
                "'{remote_path}' is not a file path to upload to"
            )));
        }
        let path = shell_quote(remote_path);
        let tmp = shell_quote(&format!("{remote_path}.twofold-upload"));
        let script = format!(
            "umask 077; tmp={tmp}.$$; if cat > \"$tmp\" && chmod {mode:o} \"$tmp\" && mv -f \"$tmp\" {path}; then exit 0; else rc=$?; rm -f \"$tmp\"; exit $rc; fi"
        );
        let out = self.exec(&script, Some(data)).await?;
        self.check(&out, || format!("writing {remote_path}"))
    }

    /// Close the connection politely (dropping the session also closes it).
    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }

    fn check(&self, out: &CommandOutput, what: impl FnOnce() -> String) -> Result<()> {
        if out.success() {
            Ok(())
        } else {
            Err(out.error(&self.node, &what()))
        }
    }

    fn ssh_error(&self, detail: String) -> Error {
        Error::Ssh {
            node: self.node.clone(),
            detail,
        }
    }
}

impl AsRef<Session> for Session {
    fn as_ref(&self) -> &Session {
        self
    }
}

/// A node's SSH host key as it presents it now, for the user to confirm before it is pinned.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScannedKey {
    /// OpenSSH form without comment (`ssh-ed25519 AAAA...`).
    pub key: String,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
}

/// Read a node's host key without logging in: the handshake only, then a polite disconnect.
pub async fn scan_host_key(target: &Target, timeout: Duration) -> Result<ScannedKey> {
    let deadline = Instant::now() + timeout;
    let (handle, key) = handshake(target, None, deadline, timeout).await?;
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "", "en")
        .await;
    Ok(ScannedKey {
        key: openssh_without_comment(&key),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
    })
}

/// TCP connect and SSH handshake, checking the host key against `pinned` (if any) before
/// anything else is sent. Returns the connection, not yet logged in, and the server's key.
async fn handshake(
    target: &Target,
    pinned: Option<&PublicKey>,
    deadline: Instant,
    timeout: Duration,
) -> Result<(client::Handle<Verifier>, PublicKey)> {
    let endpoint = target.endpoint();
    let host_unreachable = |detail: String| Error::HostUnreachable {
        host: target.name.clone(),
        detail,
    };
    let secs = format_duration(timeout);

    debug!(node = %target.name, %endpoint, "connecting over SSH");
    let socket = match tokio::time::timeout_at(deadline, tcp_connect(target)).await {
            Err(_) => {
                return Err(host_unreachable(format!(
                    "no answer from {endpoint} within {secs} (is the address right, or does a firewall drop SSH traffic?)"
                )))
            }
            Ok(Err(detail)) => return Err(host_unreachable(detail)),
            Ok(Ok(s)) => s,
        };

    let seen = Arc::new(Mutex::new(None));
    let handler = Verifier {
        pinned: pinned.cloned(),
        seen: Arc::clone(&seen),
    };
    let config = Arc::new(client_config(pinned));
    let handshake =
        tokio::time::timeout_at(deadline, client::connect_stream(config, socket, handler)).await;
    let seen_key = seen.lock().unwrap_or_else(|e| e.into_inner()).take();
    let handle = match handshake {
            Err(_) => {
                return Err(host_unreachable(format!(
                    "{endpoint} accepted the connection but did not complete an SSH handshake within {secs} (is the SSH server overloaded, or is ssh_port another service's port?)"
                )))
            }
            Ok(Err(HandshakeError::HostKeyChanged)) => {
                let expected = pinned
                    .as_ref()
                    .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                    .unwrap_or_default();
                let got = seen_key
                    .as_ref()
                    .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
                    .unwrap_or_default();
                warn!(node = %target.name, %expected, %got, "host key changed; connection refused");
                return Err(Error::HostKeyChanged {
                    node: target.name.clone(),
                    expected_fingerprint: expected,
                    got_fingerprint: got,
                });
            }
            Ok(Err(HandshakeError::Ssh(e))) => {
                return Err(Error::Ssh {
                    node: target.name.clone(),
                    detail: format!("the SSH handshake with {endpoint} failed: {e}"),
                })
            }
            Ok(Ok(h)) => h,
        };
    let Some(server_key) = seen_key else {
        return Err(Error::Ssh {
            node: target.name.clone(),
            detail: format!("{endpoint} presented no host key"),
        });
    };
    Ok((handle, server_key))
}

/// Add `public_key` (one OpenSSH line) to the remote user's `~/.ssh/authorized_keys`, creating
/// `~/.ssh` (0700) and the file (0600) if needed. Idempotent: a key already listed, with any
/// comment or options, is not added again.
pub async fn install_key(session: &Session, public_key: &str) -> Result<()> {
    let key = parse_public_key(public_key).map_err(|e| {
        Error::InvalidInput(format!(
            "not an OpenSSH public key ({e}); give one line like 'ssh-ed25519 AAAA... comment'"
        ))
    })?;
    let material = openssh_without_comment(&key);
    let line = key.to_openssh().unwrap_or_else(|_| material.clone());
    // The key comes on stdin: no quoting to get wrong. A key counts as present when two
    // neighbouring fields of a line are its type and base64, which skips any options in front.
    let script = r#"set -e
umask 077
IFS= read -r material
IFS= read -r line
d="$HOME/.ssh"
f="$d/authorized_keys"
mkdir -p "$d"
chmod 700 "$d"
touch "$f"
chmod 600 "$f"
if awk -v m="$material" '{ for (i = 1; i < NF; i++) if ($i " " $(i + 1) == m) found = 1 } END { exit !found }' "$f"; then
  exit 0
fi
if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then echo >> "$f"; fi
printf '%s\n' "$line" >> "$f"
"#;
    let input = format!("{material}\n{line}\n");
    info!(node = %session.node, key = %key.fingerprint(HashAlg::Sha256), "installing public key");
    let out = session.exec(script, Some(input.as_bytes())).await?;
    session.check(&out, || {
        format!(
            "adding a key to ~/.ssh/authorized_keys of '{}'",
            session.user
        )
    })
}

/// Create a new ed25519 key pair: `dir/name` (private, OpenSSH format, mode 0600, so `ssh -i`
/// takes it too) and `dir/name.pub`. Returns the private key's path and the public key line.
/// An existing key is never overwritten.
pub async fn generate_keypair(dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    let dir = dir.to_path_buf();
    let name = name.to_string();
    tokio::task::spawn_blocking(move || generate_keypair_blocking(&dir, &name))
        .await
        .map_err(|e| Error::io("generating a key pair", std::io::Error::other(e)))?
}

fn generate_keypair_blocking(dir: &Path, name: &str) -> Result<(PathBuf, String)> {
    if name.is_empty() || name.starts_with('.') || name.contains('/') {
        return Err(Error::InvalidInput(format!(
            "'{name}' is not a key file name; use letters, digits, '-' and '_' (like twofold_ed25519)"
        )));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ctx(|| format!("creating {}", dir.display()))?;

    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(|e| {
        Error::io(
            "reading random bytes for a new key",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let mut key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    key.set_comment(name);
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| Error::InvalidInput(format!("encoding the new key failed: {e}")))?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| Error::InvalidInput(format!("encoding the new public key failed: {e}")))?;

    let private_path = dir.join(name);
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Error::InvalidInput(format!(
                "{} already exists; Twofold never overwrites a key (nodes may trust it). Choose another name or move the old key away",
                private_path.display()
            )))
        }
        Err(e) => return Err(Error::io(format!("creating {}", private_path.display()), e)),
    };
    let written = file
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.write_all(pem.as_bytes()))
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&private_path);
        return Err(Error::io(format!("writing {}", private_path.display()), e));
    }
    let public_path = dir.join(format!("{name}.pub"));
    std::fs::write(&public_path, format!("{public}\n"))
        .and_then(|()| {
            std::fs::set_permissions(&public_path, std::fs::Permissions::from_mode(0o644))
        })
        .ctx(|| format!("writing {}", public_path.display()))?;
    info!(path = %private_path.display(), fingerprint = %key.fingerprint(HashAlg::Sha256), "new ed25519 key pair");
    Ok((private_path, public))
}

/// The SHA-256 fingerprint (`SHA256:...`) of an OpenSSH public key line, for showing a key to
/// the user.
pub fn fingerprint_of(public_key: &str) -> Result<String> {
    parse_public_key(public_key)
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .map_err(|e| Error::InvalidInput(format!("not an OpenSSH public key ({e})")))
}

fn parse_public_key(s: &str) -> std::result::Result<PublicKey, String> {
    PublicKey::from_openssh(s.trim()).map_err(|e| e.to_string())
}

/// `type base64`, the part of a public key line that identifies the key.
fn openssh_without_comment(key: &PublicKey) -> String {
    let mut k = key.clone();
    k.set_comment("");
    k.to_openssh()
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

async fn load_key_file(path: PathBuf) -> Result<PrivateKey> {
    tokio::task::spawn_blocking(move || {
        let text = Zeroizing::new(
            std::fs::read_to_string(&path)
                .ctx(|| format!("reading the SSH key {}", path.display()))?,
        );
        russh::keys::decode_secret_key(&text, None).map_err(|e| {
            let why = match e {
                russh::keys::Error::KeyIsEncrypted => {
                    "it is protected by a passphrase; Twofold needs a key without one (ssh-keygen -p -f FILE removes it)".to_string()
                }
                e => format!("it is not a private key Twofold can read ({e})"),
            };
            Error::InvalidInput(format!("SSH key {}: {why}", path.display()))
        })
    })
    .await
    .map_err(|e| Error::io("loading an SSH key", std::io::Error::other(e)))?
}

/// Name lookup and TCP connect; the error is a sentence for [`Error::HostUnreachable`].
async fn tcp_connect(target: &Target) -> std::result::Result<tokio::net::TcpStream, String> {
    let endpoint = target.endpoint();
    let addrs: Vec<SocketAddr> =
        match tokio::net::lookup_host((target.address.as_str(), target.port)).await {
            Ok(a) => a.collect(),
            Err(e) => {
                return Err(format!(
                    "cannot resolve '{}' ({e}); check the node's address",
                    target.address
                ))
            }
        };
    let mut last = format!("'{}' resolves to no address", target.address);
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => {
                last = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => format!(
                        "{endpoint} refused the connection: nothing listens on port {} (is ssh_port right, and does the SSH server run?)",
                        target.port
                    ),
                    std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                        format!("no route to {endpoint} ({e}); check the address and the network cable")
                    }
                    _ => format!("connecting to {endpoint} failed: {e}"),
                }
            }
        }
    }
    Err(last)
}

fn client_config(pinned: Option<&PublicKey>) -> client::Config {
    let mut config = client::Config {
        // A node that vanishes mid-command is noticed within about a minute, not never.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        nodelay: true,
        ..Default::default()
    };
    if let Some(pinned) = pinned {
        // Ask for the pinned key's type first, as OpenSSH does with known_hosts: a server with
        // several host keys would otherwise show another one and look changed.
        let want = pinned.algorithm();
        let want_rsa = want.clone().is_rsa();
        let mut keys: Vec<Algorithm> = config.preferred.key.to_vec();
        keys.sort_by_key(|a| !(a == &want || (want_rsa && a.clone().is_rsa())));
        config.preferred.key = Cow::Owned(keys);
    }
    config
}

fn signal_number(sig: &Sig) -> u32 {
    match sig {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => 127,
    }
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

enum Credential<'a> {
    Password(&'a Secret),
    Key(Arc<PrivateKey>),
}

/// Checks the server's host key during the handshake, before any authentication is sent.
struct Verifier {
    pinned: Option<PublicKey>,
    seen: Arc<Mutex<Option<PublicKey>>>,
}

#[derive(Debug)]
enum HandshakeError {
    Ssh(russh::Error),
    HostKeyChanged,
}

impl From<russh::Error> for HandshakeError {
    fn from(e: russh::Error) -> Self {
        HandshakeError::Ssh(e)
    }
}

impl client::Handler for Verifier {
    type Error = HandshakeError;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        // Host certificates are not asked for (no certificate algorithms are offered).
        let PublicKeyOrCertificate::PublicKey { key, .. } = server_key else {
            return Ok(false);
        };
        *self.seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(key.clone());
        match &self.pinned {
            Some(pinned) if pinned.key_data() != key.key_data() => {
                Err(HandshakeError::HostKeyChanged)
            }
            _ => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests;
