//! Smoke-test mode for CI (`tests/desktop-smoke.sh`). With `TWOFOLD_DESKTOP_SMOKE=/path/out.json`
//! set, the front end reports what it rendered after its first refresh through
//! [`smoke_report`]; the app writes that report to the path and exits: 0 if the window rendered,
//! 1 if rendering failed (the report then carries the error), 3 if the report could not be
//! written. A safety timer exits 2 if no report arrives in [`SAFETY_TIMEOUT`], so a webview that
//! never loads fails the test instead of hanging it.
//!
//! `TWOFOLD_DESKTOP_SMOKE_LINGER_MS` keeps the window up that long after the report is written, so
//! the test can take a screenshot.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tauri::{AppHandle, State};

use crate::error::UiError;

pub const SAFETY_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Smoke {
    out: Option<PathBuf>,
    linger: Duration,
}

/// What the window showed after its first refresh, counted from the rendered DOM.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SmokeReport {
    pub node_rows: usize,
    pub vm_rows: usize,
    pub event_rows: usize,
    pub node_names: Vec<String>,
    /// Set when the first refresh failed: the error the banner showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<UiError>,
}

impl Smoke {
    pub fn from_env() -> Smoke {
        let out = std::env::var_os("TWOFOLD_DESKTOP_SMOKE")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let linger = std::env::var("TWOFOLD_DESKTOP_SMOKE_LINGER_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis);
        Smoke { out, linger }
    }

    pub fn arm_safety_timeout(&self) {
        if self.out.is_none() {
            return;
        }
        std::thread::spawn(|| {
            std::thread::sleep(SAFETY_TIMEOUT);
            eprintln!(
                "twofold-desktop: smoke test: no report from the window after {}s; giving up",
                SAFETY_TIMEOUT.as_secs()
            );
            twofold::shutdown::exit(2);
        });
    }
}

#[tauri::command]
pub fn smoke_enabled(smoke: State<'_, Smoke>) -> bool {
    smoke.out.is_some()
}

/// Write the report and exit. Sync on purpose: it runs once, writes a few hundred bytes, and the
/// app ends right after.
#[tauri::command]
pub fn smoke_report(
    app: AppHandle,
    smoke: State<'_, Smoke>,
    report: SmokeReport,
) -> Result<(), UiError> {
    let Some(out) = smoke.out.as_deref() else {
        return Err(UiError {
            code: "invalid_input".into(),
            message: "smoke_report is only accepted when TWOFOLD_DESKTOP_SMOKE is set".into(),
        });
    };
    let code = match write_report(out, &report) {
        Err(e) => {
            eprintln!(
                "twofold-desktop: smoke test: cannot write {}: {e}",
                out.display()
            );
            3
        }
        Ok(()) => match &report.error {
            Some(e) => {
                eprintln!(
                    "twofold-desktop: smoke test: the window shows an error: [{}] {}",
                    e.code, e.message
                );
                1
            }
            None => 0,
        },
    };
    let linger = smoke.linger;
    // Exit from another thread so that lingering (for a screenshot) does not block the main
    // thread, which must keep painting the window.
    std::thread::spawn(move || {
        std::thread::sleep(linger);
        app.exit(code);
    });
    Ok(())
}

fn write_report(out: &Path, report: &SmokeReport) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    std::fs::write(out, json + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_reads_the_front_ends_camel_case() {
        let r: SmokeReport = serde_json::from_value(serde_json::json!({
            "nodeRows": 2, "vmRows": 1, "eventRows": 0, "nodeNames": ["a", "b"]
        }))
        .unwrap();
        assert_eq!((r.node_rows, r.vm_rows), (2, 1));
        assert!(r.error.is_none());
        let dir = std::env::temp_dir().join(format!("twofold-smoke-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("out.json");
        write_report(&p, &r).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(back["nodeNames"][1], "b");
        assert!(back.get("error").is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
