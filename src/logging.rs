//! Where the engine's log lines go. Each binary calls [`init`] once, first thing, with where its
//! user will look: the CLI on stderr (warnings by default, more with `-v`), the desktop app in
//! daily files in its data directory (nobody reads a desktop program's stderr), a daemon started
//! by systemd in the journal. `RUST_LOG` (tracing's filter syntax, e.g. `twofold=debug`) overrides
//! the front end's level. [`init`] also routes panics through the log, so a panic caught at the
//! libvirt callback boundary, or one on a background thread, leaves a line where the logs are.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer, Registry};

/// Daily log files kept; older ones are deleted as new ones start.
pub const KEEP_FILES: usize = 14;

/// Where log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard error; colours only on a terminal.
    Stderr,
    /// The journal when systemd connected stderr to it (a service), stderr otherwise.
    Auto,
    /// systemd's journal, under the identifier `twofold`.
    Journald,
    /// Daily files `<prefix>.YYYY-MM-DD.log` in `dir`, the last [`KEEP_FILES`] kept.
    Files { dir: PathBuf, prefix: String },
}

/// What [`init`] set up.
#[derive(Debug)]
pub struct Installed {
    /// Where lines go now (stderr when the asked-for output could not be opened).
    pub output: Output,
    /// Why the asked-for output or filter was not used, also logged as a warning.
    pub problems: Vec<String>,
}

/// The filter for a CLI verbosity: `-v` counts. Twofold's own lines get one level more than the
/// libraries' (russh, tauri), whose debug output would drown them.
pub fn verbosity_filter(verbose: u8) -> &'static str {
    match verbose {
        0 => "warn",
        1 => "warn,twofold=info,twofold_desktop=info",
        2 => "info,twofold=debug,twofold_desktop=debug",
        _ => "debug,twofold=trace,twofold_desktop=trace",
    }
}

/// Where a program run by a user keeps its logs: `$XDG_DATA_HOME/twofold/logs`, by default
/// `~/.local/share/twofold/logs`. None without a home directory.
pub fn user_log_dir() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
                .map(|h| h.join(".local/share"))
        })?;
    Some(data.join("twofold").join("logs"))
}

/// Set up the process's log output and the panic hook. `default_filter` applies unless
/// `RUST_LOG` is set. Never fails: an output that cannot be opened (a log directory that cannot
/// be created, no journal) falls back to stderr, and [`Installed::problems`] says why. Calling it
/// again leaves the first set-up in place.
pub fn init(output: Output, default_filter: &str) -> Installed {
    let mut problems = Vec::new();
    let filter = filter_from_env(default_filter, &mut problems);
    let output = match output {
        Output::Auto if stderr_is_journal() => Output::Journald,
        Output::Auto => Output::Stderr,
        o => o,
    };

    let (layer, used): (Box<dyn Layer<Registry> + Send + Sync>, Output) = match &output {
        Output::Files { dir, prefix } => match file_appender(dir, prefix) {
            Ok(appender) => (
                fmt::layer()
                    .with_ansi(false)
                    .with_thread_names(true)
                    .with_writer(appender)
                    .boxed(),
                output.clone(),
            ),
            Err(e) => {
                problems.push(format!(
                    "cannot write logs in {}: {e}; logging to stderr instead",
                    dir.display()
                ));
                (stderr_layer(), Output::Stderr)
            }
        },
        Output::Journald => match tracing_journald::layer() {
            Ok(l) => (l.with_syslog_identifier("twofold".into()).boxed(), output),
            Err(e) => {
                problems.push(format!(
                    "cannot reach the journal: {e}; logging to stderr instead"
                ));
                (stderr_layer(), Output::Stderr)
            }
        },
        Output::Stderr | Output::Auto => (stderr_layer(), Output::Stderr),
    };

    // An error means a subscriber is already installed (a second call, or a test harness that
    // set its own): keep it.
    let _ = Registry::default()
        .with(layer.with_filter(filter))
        .try_init();
    log_panics();
    for p in &problems {
        tracing::warn!("{p}");
    }
    Installed {
        output: used,
        problems,
    }
}

fn filter_from_env(default_filter: &str, problems: &mut Vec<String>) -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => match EnvFilter::try_new(&v) {
            Ok(f) => return f,
            Err(e) => problems.push(format!(
                "RUST_LOG={v:?} is not a log filter ({e}); using {default_filter:?}. \
                 Example: RUST_LOG=twofold=debug"
            )),
        },
        _ => {}
    }
    EnvFilter::try_new(default_filter).unwrap_or_else(|_| EnvFilter::new("warn"))
}

fn stderr_layer() -> Box<dyn Layer<Registry> + Send + Sync> {
    use std::io::IsTerminal;
    fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .boxed()
}

fn file_appender(dir: &Path, prefix: &str) -> std::io::Result<RollingFileAppender> {
    std::fs::create_dir_all(dir)?;
    // Blocking writes on purpose: the app logs a few lines a minute, and a background writer
    // would lose the last lines when the process exits through std::process::exit (as Tauri's
    // event loop does), which are the ones that say why it stopped.
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(prefix)
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(dir)
        .map_err(std::io::Error::other)
}

/// systemd sets `JOURNAL_STREAM` to the device and inode of the stream it connected to a
/// service's stderr. A child process inherits the variable but not necessarily the stream, so
/// both are compared, as systemd's documentation asks.
fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    File::from(fd)
        .metadata()
        .is_ok_and(|m| is_stream(&v.to_string_lossy(), &m))
}

/// Whether `journal_stream` (`DEVICE:INODE`) names the file `m` is about.
fn is_stream(journal_stream: &str, m: &std::fs::Metadata) -> bool {
    let Some((dev, ino)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == m.dev()) && ino.parse::<u64>().is_ok_and(|i| i == m.ino())
}

/// Every panic is logged as an error (message, place, thread, backtrace) before the default hook
/// prints it, so one caught by `catch_unwind` or on a background thread is not lost. Installed
/// once per process.
fn log_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            log_panic(info);
            default(info);
        }));
    });
}

fn log_panic(info: &std::panic::PanicHookInfo<'_>) {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let at = info
        .location()
        .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
    let thread = std::thread::current();
    let thread = thread.name().unwrap_or("unnamed");
    let backtrace = std::backtrace::Backtrace::force_capture();
    tracing::error!(target: "panic", %thread, %at, %backtrace, "panic: {message}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_caught_panic_is_logged_with_its_message_and_place() {
        log_panics();
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = Registry::default().with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(move || writer.clone()),
        );
        let caught = tracing::subscriber::with_default(subscriber, || {
            std::panic::catch_unwind(|| panic!("a libvirt callback went wrong"))
        });
        assert!(caught.is_err());
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("ERROR"), "{text}");
        assert!(
            text.contains("panic: a libvirt callback went wrong"),
            "{text}"
        );
        assert!(text.contains("src/logging.rs:"), "the place: {text}");
    }

    #[test]
    fn daily_files_are_written_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("deep/logs");
        let appender = file_appender(&logs, "twofold-test").unwrap();
        let subscriber = Registry::default().with(
            fmt::layer()
                .with_ansi(false)
                .with_writer(appender)
                .with_filter(EnvFilter::new(verbosity_filter(1))),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("kept");
            tracing::debug!("filtered out");
        });
        let files: Vec<_> = std::fs::read_dir(&logs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("twofold-test.") && name.ends_with(".log"),
            "{name}"
        );
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(text.contains("kept"), "{text}");
        assert!(!text.contains("filtered out"), "{text}");
    }

    #[test]
    fn an_unwritable_log_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        assert!(file_appender(&file.join("logs"), "x").is_err());
    }

    #[test]
    fn more_v_means_more_lines() {
        let f = |v| EnvFilter::new(verbosity_filter(v)).max_level_hint();
        assert!(
            f(0) < f(1) && f(1) < f(2) && f(2) < f(3),
            "{:?}",
            (0..4).map(f).collect::<Vec<_>>()
        );
    }

    #[test]
    fn the_journal_is_recognised_by_device_and_inode() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "").unwrap();
        std::fs::write(&b, "").unwrap();
        let (ma, mb) = (
            std::fs::metadata(&a).unwrap(),
            std::fs::metadata(&b).unwrap(),
        );
        let var = format!("{}:{}", ma.dev(), ma.ino());
        assert!(is_stream(&var, &ma));
        assert!(!is_stream(&var, &mb), "another file on the same device");
        for bad in ["", "12", "x:y", ":", "1:2:3"] {
            assert!(!is_stream(bad, &ma), "{bad:?}");
        }
    }
}
