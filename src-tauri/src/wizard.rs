//! The setup wizard's commands: each turns the window's request into the engine's types and
//! calls `twofold::provision` (connect, check, plan, apply, verify), the same engine the CLI
//! runs. Progress reaches the window through a [`Channel`]; errors as `{code, message}`.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::State;
use twofold::inventory::{default_path, Inventory};
use twofold::node::{scan_host_key, Secret, Target};
use twofold::nodes::{NodeList, NodeSpec, Role};
use twofold::progress::{Progress, ProgressEvent};
use twofold::provision::apply::{ApplyCancel, ApplyReport, VerifyReport};
use twofold::provision::connect::{self, Credentials};
use twofold::provision::plan::StepInfo;
use twofold::provision::sizing::{SizingReport, VmSpec};
use twofold::provision::wizard::{self, Scorecard};
use twofold::provision::{CheckResult, PreflightOptions, Setup, SetupRequest};

use crate::error::UiError;

const SCAN_TIMEOUT: Duration = Duration::from_secs(10);

/// One machine as the wizard's form holds it. The password is a [`Secret`]: it prints as `***`
/// and its memory is wiped when the request is dropped.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Deserialize)]
pub struct MachineInput {
    pub name: String,
    pub role: Role,
    pub address: String,
    pub ssh_port: u16,
    pub user: String,
    #[serde(default)]
    #[cfg_attr(test, ts(optional, as = "Option<String>"))]
    pub password: Option<Secret>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub key: Option<PathBuf>,
    #[serde(default)]
    #[cfg_attr(test, ts(optional))]
    pub host_key: Option<String>,
}

impl MachineInput {
    fn spec(&self) -> NodeSpec {
        NodeSpec {
            name: self.name.trim().to_string(),
            role: self.role,
            address: self.address.trim().to_string(),
            ssh_port: self.ssh_port,
            user: self.user.trim().to_string(),
            key: self.key.clone().filter(|k| !k.as_os_str().is_empty()),
            host_key: self.host_key.clone().filter(|k| !k.trim().is_empty()),
        }
    }
}

#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "SetupRequest"))]
#[derive(Debug, Clone, Deserialize)]
pub struct RequestIn {
    pub machines: Vec<MachineInput>,
    #[serde(default)]
    pub protect: Vec<VmSpec>,
    #[serde(default)]
    pub allow_emulation: bool,
}

fn node_list(machines: &[MachineInput]) -> Result<NodeList, UiError> {
    let list = NodeList {
        nodes: machines.iter().map(MachineInput::spec).collect(),
    };
    list.validate()
        .map_err(|e| UiError::from(twofold::Error::InvalidInput(e)))?;
    Ok(list)
}

/// How the engine may log in: Twofold's key, else the password typed for that machine.
fn credentials(machines: &[MachineInput], twofold_key: PathBuf) -> Credentials {
    let node_passwords = machines
        .iter()
        .filter_map(|m| {
            m.password
                .as_ref()
                .filter(|p| !p.expose().is_empty())
                .map(|p| (m.name.trim().to_string(), p.clone()))
        })
        .collect();
    Credentials {
        twofold_key,
        password: None,
        node_passwords,
        trust_first_contact: false,
    }
}

async fn connect(req: RequestIn) -> Result<Setup, UiError> {
    let nodes = node_list(&req.machines)?;
    if let Some(m) = nodes.nodes.iter().find(|n| n.host_key.is_none()) {
        return Err(twofold::Error::InvalidInput(format!(
            "the host key of {} is not confirmed yet; go back to the trust step and confirm it",
            m.name
        ))
        .into());
    }
    let (key, _) = connect::ensure_twofold_key(&connect::key_dir(&default_path())).await?;
    Ok(Setup::connect(SetupRequest {
        nodes,
        credentials: credentials(&req.machines, key),
        protect: req.protect,
        preflight: PreflightOptions {
            allow_emulation: req.allow_emulation,
            ..PreflightOptions::default()
        },
    })
    .await?)
}

/// Progress as the engine's typed events on the window's channel: phases, amounts and lines
/// as their generic events, a run of steps as its own.
pub(crate) struct ChannelProgress(pub(crate) Channel<ProgressEvent>);

impl ChannelProgress {
    fn send(&self, e: ProgressEvent) {
        // A closed window drops its channel; the work goes on without it.
        let _ = self.0.send(e);
    }
}

impl Progress for ChannelProgress {
    fn begin(&self, phase: &str, total: Option<u64>) {
        self.send(ProgressEvent::Begin {
            phase: phase.into(),
            total,
        });
    }
    fn update(&self, done: u64, total: Option<u64>) {
        self.send(ProgressEvent::Update { done, total });
    }
    fn message(&self, line: &str) {
        self.send(ProgressEvent::Message { line: line.into() });
    }
    fn finish(&self) {
        self.send(ProgressEvent::Finish);
    }
    fn event(&self, e: &ProgressEvent) {
        self.send(e.clone());
    }
}

/// The wizard's run state: the apply in progress (to cancel it, and to refuse a second one), and
/// what the last check and verify found (for the scorecard).
#[derive(Default)]
pub struct WizardRuns {
    apply: Mutex<Option<ApplyCancel>>,
    sizing: Mutex<Option<SizingReport>>,
    verify: Mutex<Option<VerifyReport>>,
}

impl WizardRuns {
    /// Whether a setup is being applied now.
    pub fn applying(&self) -> bool {
        lock(&self.apply).is_some()
    }

    /// Ask the apply in progress to stop before its next step; false when none runs.
    pub fn cancel_apply(&self) -> bool {
        lock(&self.apply)
            .as_ref()
            .map(ApplyCancel::cancel)
            .is_some()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[tauri::command]
pub async fn wizard_load() -> Result<Option<serde_json::Value>, UiError> {
    Ok(wizard::load(&wizard::state_path(&default_path()))?)
}

#[tauri::command]
pub async fn wizard_save(state: serde_json::Value) -> Result<(), UiError> {
    Ok(wizard::save(&wizard::state_path(&default_path()), &state)?)
}

#[tauri::command]
pub async fn wizard_clear() -> Result<(), UiError> {
    Ok(wizard::clear(&wizard::state_path(&default_path()))?)
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct HostKeySeen {
    name: String,
    address: String,
    key: String,
    fingerprint: String,
    /// The key the machine had pinned, when it differs from what it presents now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    changed_from: Option<String>,
}

#[tauri::command]
pub async fn scan_host_keys(machines: Vec<MachineInput>) -> Result<Vec<HostKeySeen>, UiError> {
    let list = node_list(&machines)?;
    let scans = list.nodes.iter().map(|n| async move {
        let seen = scan_host_key(&Target::from(n), SCAN_TIMEOUT).await?;
        let changed_from = n
            .host_key
            .as_ref()
            .filter(|k| key_material(k) != key_material(&seen.key))
            .map(|k| twofold::node::fingerprint_of(k).unwrap_or_else(|_| k.clone()));
        Ok::<_, twofold::Error>(HostKeySeen {
            name: n.name.clone(),
            address: n.address.clone(),
            key: seen.key,
            fingerprint: seen.fingerprint,
            changed_from,
        })
    });
    let mut out = Vec::new();
    // Four machines, each bounded by SCAN_TIMEOUT: scanned together.
    for r in futures::future::join_all(scans).await {
        out.push(r?);
    }
    Ok(out)
}

/// `type base64`, without a comment.
fn key_material(k: &str) -> String {
    k.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PreflightView {
    passed: bool,
    summary: String,
    results: Vec<CheckResult>,
    sizing: Option<SizingReport>,
}

#[tauri::command]
pub async fn setup_preflight(
    runs: State<'_, WizardRuns>,
    request: RequestIn,
    on_progress: Channel<ProgressEvent>,
) -> Result<PreflightView, UiError> {
    let setup = connect(request).await?;
    let ready = setup.check(&ChannelProgress(on_progress)).await?;
    *lock(&runs.sizing) = ready.sizing.clone();
    Ok(PreflightView {
        passed: ready.passed,
        summary: ready.summary,
        results: ready.preflight.results,
        sizing: ready.sizing,
    })
}

/// The plan as the window shows it (the engine's plan serializes to exactly this).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct PlanView {
    name: String,
    steps: Vec<StepInfo>,
}

#[tauri::command]
pub async fn setup_plan(request: RequestIn) -> Result<PlanView, UiError> {
    let setup = connect(request).await?;
    let plan = setup.plan()?;
    Ok(PlanView {
        name: plan.name().to_string(),
        steps: plan.steps().cloned().collect(),
    })
}

#[tauri::command]
pub async fn setup_apply(
    runs: State<'_, WizardRuns>,
    request: RequestIn,
    on_progress: Channel<ProgressEvent>,
) -> Result<ApplyReport, UiError> {
    let cancel = {
        let mut slot = lock(&runs.apply);
        if slot.is_some() {
            return Err(twofold::Error::Busy {
                what: "the setup is being applied".into(),
            }
            .into());
        }
        let c = ApplyCancel::new();
        *slot = Some(c.clone());
        c
    };
    let result = async {
        let setup = connect(request).await?;
        // The machines are checked again right before changing them: they may have changed
        // since the preflight step.
        let progress = ChannelProgress(on_progress);
        setup.check(&progress).await?.require()?;
        Ok::<_, UiError>(setup.apply(&default_path(), &progress, &cancel).await?)
    }
    .await;
    *lock(&runs.apply) = None;
    result
}

#[tauri::command]
pub async fn setup_cancel(runs: State<'_, WizardRuns>) -> Result<(), UiError> {
    if let Some(c) = lock(&runs.apply).as_ref() {
        c.cancel();
    }
    Ok(())
}

#[tauri::command]
pub async fn setup_verify(
    runs: State<'_, WizardRuns>,
    request: RequestIn,
) -> Result<VerifyReport, UiError> {
    let setup = connect(request).await?;
    let report = setup.verify().await?;
    *lock(&runs.verify) = Some(report.clone());
    Ok(report)
}

#[tauri::command]
pub async fn scorecard(runs: State<'_, WizardRuns>) -> Result<Scorecard, UiError> {
    let sizing = lock(&runs.sizing).clone();
    let verify = lock(&runs.verify).clone();
    tauri::async_runtime::spawn_blocking(move || {
        let inv = Inventory::open(&default_path())?;
        wizard::scorecard(&inv, sizing.as_ref(), verify.as_ref())
    })
    .await
    .map_err(UiError::internal)?
    .map_err(UiError::from)
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct LabMachine {
    name: String,
    role: Role,
    address: String,
    ssh_port: u16,
    user: String,
    /// Sent to the window once, to fill the form; never printed.
    #[serde(serialize_with = "expose_secret")]
    #[cfg_attr(test, ts(as = "String"))]
    password: Secret,
}

fn expose_secret<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct LabMachines {
    machines: Vec<LabMachine>,
    allow_emulation: bool,
}

/// "Try it on this computer": the built-in lab's four machines, bare (nothing but sshd), for the
/// wizard to set up like real ones.
#[tauri::command]
pub async fn lab_try(on_progress: Channel<ProgressEvent>) -> Result<LabMachines, UiError> {
    tauri::async_runtime::spawn_blocking(move || {
        let lab = twofold::lab::Lab::new();
        let exe = std::env::current_exe()
            .map_err(|e| twofold::Error::io("finding the app's own program", e))?;
        let status = lab.up(
            &twofold::lab::UpOptions {
                bare: true,
                twofold_exe: exe,
                inventory: None,
            },
            &ChannelProgress(on_progress),
        )?;
        let password = lab.root_password()?;
        Ok::<_, twofold::Error>(LabMachines {
            machines: lab
                .node_list()?
                .nodes
                .into_iter()
                .map(|n| LabMachine {
                    name: n.name,
                    role: n.role,
                    address: n.address,
                    ssh_port: n.ssh_port,
                    user: n.user,
                    password: password.clone(),
                })
                .collect(),
            allow_emulation: status.domain_type.as_deref() == Some("qemu"),
        })
    })
    .await
    .map_err(UiError::internal)?
    .map_err(UiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2-wizard";

    #[test]
    fn machine_input_never_prints_its_password() {
        let json = serde_json::json!({
            "machines": [{
                "name": "host1", "role": "host", "address": "10.0.0.1", "ssh_port": 22,
                "user": "root", "password": PASSWORD
            }],
            "allow_emulation": true
        });
        let req: RequestIn = serde_json::from_value(json).unwrap();
        let m = &req.machines[0];
        assert_eq!(m.password.as_ref().map(Secret::expose), Some(PASSWORD));
        for shown in [format!("{req:?}"), format!("{req:#?}"), format!("{m:?}")] {
            assert!(!shown.contains(PASSWORD), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        // What the engine gets from it: the same password, still a secret.
        let creds = credentials(&req.machines, PathBuf::from("/k"));
        assert_eq!(creds.node_passwords["host1"].expose(), PASSWORD);
        assert!(!format!("{creds:?}").contains(PASSWORD));
        assert!(!format!("{:?}", m.spec()).contains(PASSWORD));
    }

    #[test]
    fn lab_machine_sends_the_password_to_the_window_but_never_prints_it() {
        let m = LabMachine {
            name: "host1".into(),
            role: Role::Host,
            address: "10.251.77.11".into(),
            ssh_port: 22,
            user: "root".into(),
            password: Secret::new(PASSWORD),
        };
        assert!(!format!("{m:?}").contains(PASSWORD));
        let sent = serde_json::to_value(&m).unwrap();
        assert_eq!(sent["password"], PASSWORD);
    }
}
