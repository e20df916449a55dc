//! The lab's console server. The serial port of every lab guest is a TCP client of this server
//! (`<serial type='tcp'><source mode='connect' ...>`). During a migration the guest's QEMU on the
//! source and then the one on the destination connect one after another, possibly overlapping for
//! a moment; each connection gets its own thread.
//!
//! Every received line goes to `DIR/console.log` as `RECV_UNIX_MS<TAB>LINE`, every heartbeat line
//! (`TFHB name=NAME ...`) also to `DIR/NAME.log`; each line is written with one `write` call as
//! soon as it is complete. The timestamp is the host's receive time: guest clocks stop while a
//! migrating VM is paused, so only receive times show the outage. Connections and disconnections
//! go to `DIR/connections.log`.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, IoContext, Result};

/// Longest line kept whole; longer runs without a newline are split.
const MAX_LINE: usize = 64 * 1024;
/// How often idle threads look at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Milliseconds since the Unix epoch, host clock.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A guest name usable as a file name: `[A-Za-z0-9._-]`, 1..=64 characters, not starting with a dot.
pub fn valid_guest_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The guest name of a heartbeat line (`TFHB name=NAME ...`), if it is one.
fn heartbeat_name(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("TFHB ")?;
    let name = rest
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("name="))?;
    valid_guest_name(name).then_some(name)
}

struct Logs {
    dir: PathBuf,
    console: File,
    connections: File,
    per_guest: HashMap<String, File>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx(|| format!("opening {} for appending", path.display()))
}

impl Logs {
    fn open(dir: &Path) -> Result<Logs> {
        std::fs::create_dir_all(dir)
            .ctx(|| format!("creating console log folder {}", dir.display()))?;
        Ok(Logs {
            dir: dir.to_path_buf(),
            console: open_append(&dir.join("console.log"))?,
            connections: open_append(&dir.join("connections.log"))?,
            per_guest: HashMap::new(),
        })
    }

    fn line(&mut self, recv_ms: i64, line: &str) {
        let text = format!("{recv_ms}\t{line}\n");
        if let Err(e) = self.console.write_all(text.as_bytes()) {
            tracing::warn!("console server: writing console.log: {e}");
        }
        let Some(name) = heartbeat_name(line) else {
            return;
        };
        if !self.per_guest.contains_key(name) {
            match open_append(&self.dir.join(format!("{name}.log"))) {
                Ok(f) => {
                    self.per_guest.insert(name.to_string(), f);
                }
                Err(e) => {
                    tracing::warn!("console server: {e}");
                    return;
                }
            }
        }
        if let Some(f) = self.per_guest.get_mut(name) {
            if let Err(e) = f.write_all(text.as_bytes()) {
                tracing::warn!("console server: writing {name}.log: {e}");
            }
        }
    }

    fn event(&mut self, what: &str) {
        let _ = writeln!(self.connections, "{}\t{what}", unix_ms());
    }
}

/// A running console server; stops (and joins its threads) on [`ConsoleServer::stop`] or drop.
pub struct ConsoleServer {
    addr: SocketAddr,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ConsoleServer {
    /// Binds `bind` (port 0 picks a free port, see [`ConsoleServer::local_addr`]) and starts
    /// logging into `dir` (created if missing; logs are appended to).
    pub fn start(bind: SocketAddr, dir: &Path) -> Result<ConsoleServer> {
        let logs = Arc::new(Mutex::new(Logs::open(dir)?));
        let listener = TcpListener::bind(bind).map_err(|e| {
            Error::Lab(format!(
                "console server cannot listen on {bind}: {e}; is another one running \
                 (`twofold lab status`), or is the address not on this machine?"
            ))
        })?;
        let addr = listener
            .local_addr()
            .ctx(|| "reading the console server's address".into())?;
        listener
            .set_nonblocking(true)
            .ctx(|| "making the console listener non-blocking".into())?;
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, conns) = (stop.clone(), conns.clone());
            std::thread::Builder::new()
                .name("console-accept".into())
                .spawn(move || accept_loop(listener, logs, stop, conns))
                .ctx(|| "starting the console server thread".into())?
        };
        tracing::info!(
            "console server listening on {addr}, logging to {}",
            dir.display()
        );
        Ok(ConsoleServer {
            addr,
            dir: dir.to_path_buf(),
            stop,
            accept: Some(accept),
            conns,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The folder it logs into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the heartbeat log of guest `name`.
    pub fn guest_log(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.log"))
    }

    /// Stops accepting, closes every connection (partial lines are logged) and joins all threads.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let handles: Vec<_> = self
            .conns
            .lock()
            .map(|mut v| v.drain(..).collect())
            .unwrap_or_default();
        for h in handles {
            let _ = h.join();
        }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs a console server until the process is killed (the lab's console daemon).
pub fn run_forever(bind: SocketAddr, dir: &Path) -> Result<()> {
    let server = ConsoleServer::start(bind, dir)?;
    println!(
        "console server listening on {}, logging to {}",
        server.local_addr(),
        dir.display()
    );
    loop {
        std::thread::park();
    }
}

fn accept_loop(
    listener: TcpListener,
    logs: Arc<Mutex<Logs>>,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let (logs, stop) = (logs.clone(), stop.clone());
                let spawned = std::thread::Builder::new()
                    .name(format!("console-{peer}"))
                    .spawn(move || serve(stream, peer, logs, stop));
                match spawned {
                    Ok(h) => {
                        if let Ok(mut v) = conns.lock() {
                            v.retain(|h| !h.is_finished());
                            v.push(h);
                        }
                    }
                    Err(e) => tracing::warn!("console server: no thread for {peer}: {e}"),
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("console server: accept failed: {e}");
                std::thread::sleep(POLL);
            }
        }
    }
}

fn log_line(logs: &Mutex<Logs>, raw: &[u8]) {
    let mut raw = raw;
    while let Some(rest) = raw.strip_suffix(b"\n").or_else(|| raw.strip_suffix(b"\r")) {
        raw = rest;
    }
    let line = String::from_utf8_lossy(raw);
    let now = unix_ms();
    if let Ok(mut l) = logs.lock() {
        l.line(now, &line);
    }
}

fn serve(stream: TcpStream, peer: SocketAddr, logs: Arc<Mutex<Logs>>, stop: Arc<AtomicBool>) {
    if let Ok(mut l) = logs.lock() {
        l.event(&format!("connect {peer}"));
    }
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut reader = BufReader::new(stream);
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    let mut bytes = 0u64;
    let why = loop {
        if stop.load(Ordering::SeqCst) {
            break "server stopping";
        }
        let before = buf.len();
        // On a timeout `read_until` keeps what it read in `buf`; the line is completed later.
        let res = {
            let mut limited =
                Read::take(&mut reader, (MAX_LINE - buf.len().min(MAX_LINE - 1)) as u64);
            limited.read_until(b'\n', &mut buf)
        };
        bytes += (buf.len() - before) as u64;
        match res {
            Ok(0) if buf.len() == before => break "closed by peer",
            Ok(_) => {
                if buf.last() == Some(&b'\n') || buf.len() >= MAX_LINE {
                    log_line(&logs, &buf);
                    buf.clear();
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break "read error",
        }
    };
    if !buf.is_empty() {
        log_line(&logs, &buf);
    }
    if let Ok(mut l) = logs.lock() {
        l.event(&format!("disconnect {peer} ({why}, {bytes} bytes)"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn wait_for_lines(path: &Path, n: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let lines = read(path);
            if lines.len() >= n || std::time::Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn logs_lines_and_heartbeats_from_overlapping_connections() {
        let dir = tempfile::tempdir().unwrap();
        let server = ConsoleServer::start("127.0.0.1:0".parse().unwrap(), dir.path()).unwrap();
        let addr = server.local_addr();
        let before = unix_ms();

        let mut a = TcpStream::connect(addr).unwrap();
        let mut b = TcpStream::connect(addr).unwrap();
        a.write_all(b"booting\r\nTFHB name=vm1 boot=1 seq=1 mono_ms=5 acked=0\r\nTFHB na")
            .unwrap();
        a.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150)); // a line split across reads
        a.write_all(b"me=vm1 boot=1 seq=2 mono_ms=105 acked=1\n")
            .unwrap();
        b.write_all(b"TFHB name=../evil boot=1 seq=1 mono_ms=1 acked=0\n")
            .unwrap();
        b.write_all(b"TFHB name=vm2 boot=3 seq=9 mono_ms=1 acked=0\npartial")
            .unwrap();
        drop(b);
        let vm1 = wait_for_lines(&dir.path().join("vm1.log"), 2);
        let console = wait_for_lines(&dir.path().join("console.log"), 6);
        drop(a);
        server.stop();

        assert_eq!(vm1.len(), 2, "{vm1:?}");
        let (ms, line) = vm1[1].split_once('\t').unwrap();
        assert!(ms.parse::<i64>().unwrap() >= before);
        assert_eq!(line, "TFHB name=vm1 boot=1 seq=2 mono_ms=105 acked=1");
        assert_eq!(read(&dir.path().join("vm2.log")).len(), 1);
        assert!(!dir.path().join("../evil.log").exists());
        let texts: Vec<&str> = console
            .iter()
            .map(|l| l.split_once('\t').unwrap().1)
            .collect();
        for want in [
            "booting",
            "partial",
            "TFHB name=../evil boot=1 seq=1 mono_ms=1 acked=0",
        ] {
            assert!(texts.contains(&want), "{want} missing in {texts:?}");
        }
        assert_eq!(texts.len(), 6, "{texts:?}");
        let conns = read(&dir.path().join("connections.log"));
        assert_eq!(conns.iter().filter(|l| l.contains("\tconnect ")).count(), 2);
        assert_eq!(
            conns.iter().filter(|l| l.contains("\tdisconnect ")).count(),
            2
        );
    }

    #[test]
    fn stop_returns_with_an_idle_connection_open() {
        let dir = tempfile::tempdir().unwrap();
        let server = ConsoleServer::start("127.0.0.1:0".parse().unwrap(), dir.path()).unwrap();
        let mut c = TcpStream::connect(server.local_addr()).unwrap();
        c.write_all(b"half a line").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let t = std::time::Instant::now();
        drop(server);
        assert!(t.elapsed() < Duration::from_secs(2));
        let console = read(&dir.path().join("console.log"));
        assert_eq!(console.len(), 1);
        assert!(console[0].ends_with("\thalf a line"));
    }

    #[test]
    fn guest_names() {
        assert!(valid_guest_name("demo-1.a_b"));
        assert!(!valid_guest_name(".hidden"));
        assert!(!valid_guest_name("a/b"));
        assert!(!valid_guest_name(""));
    }
}
