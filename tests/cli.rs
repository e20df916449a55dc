//! The `twofold` program as a user runs it: where its log lines go and how `-v` and `RUST_LOG`
//! change them. Needs no lab: `vm list` on an empty inventory logs what it starts, then fails
//! with its message.

use std::process::{Command, Output};

fn twofold(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("twofold.db");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_twofold"));
    cmd.arg("--db").arg(&db).args(args).env_remove("RUST_LOG");
    cmd.env_remove("JOURNAL_STREAM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Log lines on stderr at `level`.
fn lines_at(o: &Output, level: &str) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some(level))
        .map(String::from)
        .collect()
}

#[test]
fn quiet_by_default_with_only_the_error_message() {
    let o = twofold(&["vm", "list"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(lines_at(&o, "INFO").is_empty(), "{}", stderr(&o));
    assert!(stderr(&o).contains("lists no hosts"), "{}", stderr(&o));
}

#[test]
fn dash_v_logs_what_it_does_on_stderr_and_nothing_on_stdout() {
    let o = twofold(&["-v", "vm", "list"], &[]);
    let info = lines_at(&o, "INFO");
    assert!(
        info.iter()
            .any(|l| l.contains("twofold vm") && l.contains("inventory=")),
        "{}",
        stderr(&o)
    );
    assert!(lines_at(&o, "DEBUG").is_empty(), "{}", stderr(&o));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // A global flag: after the subcommand too.
    let o = twofold(&["vm", "list", "-v", "--log", "stderr"], &[]);
    assert!(!lines_at(&o, "INFO").is_empty(), "{}", stderr(&o));
}

#[test]
fn dash_vv_and_rust_log_show_details() {
    let o = twofold(&["-vv", "vm", "list"], &[]);
    assert!(!lines_at(&o, "DEBUG").is_empty(), "{}", stderr(&o));
    let o = twofold(&["vm", "list"], &[("RUST_LOG", "twofold=debug")]);
    assert!(!lines_at(&o, "DEBUG").is_empty(), "{}", stderr(&o));
}

#[test]
fn a_bad_rust_log_is_named_and_the_default_used() {
    let o = twofold(&["-v", "vm", "list"], &[("RUST_LOG", "twofold=loud")]);
    let warn = lines_at(&o, "WARN");
    assert!(
        warn.iter()
            .any(|l| l.contains("RUST_LOG") && l.contains("twofold=loud")),
        "{}",
        stderr(&o)
    );
    assert!(
        !lines_at(&o, "INFO").is_empty(),
        "-v still applies: {}",
        stderr(&o)
    );
}
