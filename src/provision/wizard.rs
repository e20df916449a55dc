//! What the desktop wizard keeps between runs, and the four-rule scorecard it ends with.
//!
//! The wizard's progress is saved as JSON beside the inventory after every step, so closing the
//! app half-way and opening it again resumes where it stopped. Secrets are never saved: every
//! field named `password` is removed, at any depth, before the file is written.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::apply::VerifyReport;
use super::sizing::SizingReport;
use crate::error::{Error, IoContext, Result};
use crate::inventory::Inventory;
use crate::nodes::Role;
use crate::rules::{four_rules, protection_sentence, running_headline, Rule, RuleState};

/// Where the wizard's progress is kept: beside the inventory.
pub fn state_path(inventory: &Path) -> PathBuf {
    inventory
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.join("wizard.json"))
        .unwrap_or_else(|| PathBuf::from("wizard.json"))
}

/// The saved progress, if any. A damaged file is reported, not silently dropped.
pub fn load(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    serde_json::from_str(&text).map(Some).map_err(|e| {
        Error::InvalidInput(format!(
            "the saved setup progress {} is damaged ({e}); delete it to start the setup from the beginning",
            path.display()
        ))
    })
}

/// Save the progress without secrets, atomically (a crash leaves the old file or the new one).
pub fn save(path: &Path, state: &serde_json::Value) -> Result<()> {
    if !state.is_object() {
        return Err(Error::InvalidInput(
            "the setup progress to save is not an object".into(),
        ));
    }
    let mut clean = state.clone();
    strip_secrets(&mut clean);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&clean).expect("a JSON value serializes");
    std::fs::write(&tmp, text).ctx(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("replacing {}", path.display()))
}

/// Forget the saved progress (a finished or abandoned setup).
pub fn clear(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("removing {}", path.display()), e)),
    }
}

fn strip_secrets(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.remove("password");
            map.values_mut().for_each(strip_secrets);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_secrets),
        _ => {}
    }
}

/// The four rules as the wizard's last pages show them, with the engine's own words about them.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scorecard {
    /// "Healthy" only when every rule holds, else "Running, not yet protected".
    pub headline: String,
    /// One plain sentence: what is still missing, or that every rule holds.
    pub summary: String,
    pub rules: Vec<Rule>,
}

/// The four rules, from the inventory and what the setup last measured (`sizing`) and checked
/// (`verify`); `None` where that is not known in this run.
pub fn scorecard(
    inv: &Inventory,
    sizing: Option<&SizingReport>,
    verify: Option<&VerifyReport>,
) -> Result<Scorecard> {
    let nodes = inv.nodes()?;
    let hosts = nodes.iter().filter(|n| n.role == Role::Host).count();
    let stors = nodes.iter().filter(|n| n.role == Role::Storage).count();
    let protected = inv.vms()?.iter().filter(|v| v.protected).count();

    let n_plus_one = match (hosts, sizing) {
        (h, _) if h < 2 => (
            RuleState::Missing,
            format!("{h} virtualization host(s) set up; two are needed so that one can carry the VMs when the other fails."),
        ),
        (_, Some(s)) if s.ok => (
            RuleState::Ok,
            "Two hosts, and each alone can run every critical VM.".to_string(),
        ),
        (_, Some(s)) => (
            RuleState::Warn,
            format!(
                "Two hosts, but one alone cannot run every critical VM: {}",
                s.problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        ),
        (_, None) => (
            RuleState::Warn,
            format!("Two hosts; whether each alone can carry the critical VMs was not checked in this session ({protected} VM(s) protected)."),
        ),
    };
    let store_ok = verify.map(store_checks_passed);
    let storage = match (stors, store_ok) {
        (s, _) if s < 2 => (
            RuleState::Missing,
            format!("{s} storage node(s) set up; two are needed so that every VM disk has two copies."),
        ),
        (_, Some(true)) => (
            RuleState::Ok,
            "Every VM disk is kept on both storage nodes, and both hosts use the same store.".to_string(),
        ),
        (_, Some(false)) => (
            RuleState::Warn,
            "The replicated store did not pass its last check; run the check again and follow what it says.".to_string(),
        ),
        (_, None) => (
            RuleState::Warn,
            "Two storage nodes are set up; the store was not checked in this session.".to_string(),
        ),
    };
    let rules = four_rules(n_plus_one, storage);
    let summary = protection_sentence(&rules).unwrap_or_else(|| {
        "Every rule holds: the platform survives a host or a storage node failing, and its backups are kept here and offsite.".to_string()
    });
    Ok(Scorecard {
        headline: running_headline(&rules).to_string(),
        summary,
        rules,
    })
}

/// Whether the verification checked the replicated store and every such check passed. A
/// verification that has no store check at all says nothing about the store: that is a failure,
/// not a pass.
fn store_checks_passed(v: &VerifyReport) -> bool {
    let mut store = v
        .steps
        .iter()
        .filter(|s| s.id.contains("volume") || s.id.contains("store-mount"))
        .peekable();
    store.peek().is_some() && store.all(|s| s.passed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_progress_never_holds_a_password_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = state_path(&dir.path().join("twofold.db"));
        assert_eq!(load(&path).unwrap(), None);
        let state = serde_json::json!({
            "step": "trust",
            "machines": [{"name": "host1", "password": "hunter2", "address": "10.0.0.1"}],
            "nested": {"deeper": [{"password": "x"}]}
        });
        save(&path, &state).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("password"),
            "{text}"
        );
        let back = load(&path).unwrap().unwrap();
        assert_eq!(back["step"], "trust");
        assert_eq!(back["machines"][0]["address"], "10.0.0.1");
        clear(&path).unwrap();
        clear(&path).unwrap();
        assert_eq!(load(&path).unwrap(), None);
    }

    #[test]
    fn damaged_or_wrong_progress_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wizard.json");
        std::fs::write(&path, "{not json").unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("delete it"), "{e}");
        let e = save(&path, &serde_json::json!([1, 2])).unwrap_err();
        assert_eq!(e.code(), "invalid_input");
        // The damaged file was not replaced by the refused save.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{not json");
    }

    #[test]
    fn scorecard_of_an_empty_platform_names_what_is_missing() {
        let inv = Inventory::open_in_memory().unwrap();
        let card = scorecard(&inv, None, None).unwrap();
        assert_eq!(card.headline, "Running, not yet protected");
        assert!(card.summary.contains("no backups"), "{}", card.summary);
        let rules = card.rules;
        let ids: Vec<&str> = rules.iter().map(|r| r.id).collect();
        assert_eq!(
            ids,
            ["n_plus_one", "replicated_storage", "backups", "offsite"]
        );
        assert!(rules.iter().all(|r| r.state == RuleState::Missing));
        assert!(rules[0].detail.contains("0 virtualization host(s)"));
    }

    #[test]
    fn a_verification_without_a_store_check_does_not_pass_the_store() {
        use super::super::apply::StepVerdict;
        let verdict = |id: &str, passed: bool| StepVerdict {
            id: id.into(),
            node: "stor1".into(),
            title: id.into(),
            passed,
            reason: None,
        };
        let report = |steps: Vec<StepVerdict>| VerifyReport {
            plan: "setup".into(),
            passed: steps.iter().filter(|s| s.passed).count(),
            failed: steps.iter().filter(|s| !s.passed).count(),
            steps,
        };
        assert!(!store_checks_passed(&report(Vec::new())));
        assert!(!store_checks_passed(&report(vec![verdict(
            "stor1/hosts-file",
            true
        )])));
        assert!(store_checks_passed(&report(vec![
            verdict("stor1/volume", true),
            verdict("host1/store-mount", true),
        ])));
        assert!(!store_checks_passed(&report(vec![
            verdict("stor1/volume", true),
            verdict("host1/store-mount", false),
        ])));
    }
}
