//! The setup as one API for every front end (the CLI, the desktop wizard, the lab): connect to
//! the machines, check them (preflight and N+1 sizing), show the plan, apply it, verify it.
//!
//! ```text
//! let setup = Setup::connect(request).await?;      // sessions, host keys pinned
//! let ready = setup.check(&progress).await?;        // preflight + sizing, shown to the user
//! ready.require()?;                                 // refuses with nothing changed
//! let plan = setup.plan()?;                         // the steps, readable
//! let report = setup.apply(&jobs, &progress, &cancel).await?;
//! let verdict = setup.verify().await?;
//! ```
//!
//! [`provision`] runs the whole path in one call, for callers that show nothing in between.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::apply::{self, ApplyCancel, ApplyReport, VerifyReport};
use super::connect::{self, Credentials};
use super::plan::{Plan, SshRunner, StepCtx};
use super::preflight::{run_preflight, PreflightOptions, PreflightReport};
use super::setup::{build_plan, SetupInput};
use super::sizing::{size, SizingInput, SizingReport, VmSpec};
use crate::error::{Error, IoContext, Result};
use crate::inventory::Inventory;
use crate::node::Session;
use crate::nodes::{NodeList, NodeSpec};
use crate::progress::Progress;

/// What the admin asked for.
#[derive(Debug, Clone)]
pub struct SetupRequest {
    pub nodes: NodeList,
    pub credentials: Credentials,
    /// The VMs each host alone must be able to carry (N+1 sizing); may be empty.
    pub protect: Vec<VmSpec>,
    pub preflight: PreflightOptions,
}

/// The machines, connected.
pub struct Setup {
    /// The node list with every node's host key as pinned from now on.
    nodes: NodeList,
    sessions: Vec<(NodeSpec, Arc<Session>)>,
    first_contacts: Vec<FirstContact>,
    twofold_key: PathBuf,
    public_key: String,
    protect: Vec<VmSpec>,
    preflight: PreflightOptions,
}

/// A node whose host key was accepted on first contact (the node list pinned none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstContact {
    pub node: String,
    pub fingerprint: String,
}

/// Whether the machines may be set up: preflight and, with VMs to protect or not, N+1 sizing.
#[derive(Debug, Clone, Serialize)]
pub struct Readiness {
    pub passed: bool,
    pub summary: String,
    pub preflight: PreflightReport,
    /// `None` when the hosts' cores or RAM could not be read.
    pub sizing: Option<SizingReport>,
}

impl Readiness {
    /// The error to stop on, if the machines are not ready: [`Error::NotReady`] or
    /// [`Error::TooSmall`].
    pub fn require(&self) -> Result<()> {
        if !self.preflight.passed() {
            return Err(Error::NotReady {
                summary: self.preflight.summary.trim_end_matches('.').to_string(),
            });
        }
        if let Some(s) = self.sizing.as_ref().filter(|s| !s.ok) {
            return Err(Error::TooSmall {
                problems: s
                    .problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
        Ok(())
    }
}

impl Setup {
    /// Log in to every node (Twofold's key first, then the password for first contact) and pin
    /// their host keys. Bad input (an invalid node list, a VM list that cannot be sized, a host
    /// key the node list does not pin without `trust_first_contact`) is refused before any
    /// machine is contacted.
    pub async fn connect(req: SetupRequest) -> Result<Setup> {
        req.nodes.validate().map_err(Error::InvalidInput)?;
        req.preflight.validate()?;
        let public_key = read_public_key(&req.credentials.twofold_key)?;
        let sessions = connect::connect_all(&req.nodes, &req.credentials).await?;
        let first_contacts = sessions
            .iter()
            .filter(|(n, _)| {
                req.nodes
                    .get(&n.name)
                    .and_then(|o| o.host_key.as_ref())
                    .is_none()
            })
            .map(|(n, s)| FirstContact {
                node: n.name.clone(),
                fingerprint: s.fingerprint().to_string(),
            })
            .collect();
        Ok(Setup {
            nodes: NodeList {
                nodes: sessions.iter().map(|(n, _)| n.clone()).collect(),
            },
            sessions,
            first_contacts,
            twofold_key: req.credentials.twofold_key,
            public_key,
            protect: req.protect,
            preflight: req.preflight,
        })
    }

    /// The node list with every host key pinned.
    pub fn nodes(&self) -> &NodeList {
        &self.nodes
    }

    pub fn first_contacts(&self) -> &[FirstContact] {
        &self.first_contacts
    }

    /// Preflight on every node, then N+1 sizing of the hosts it measured. Changes nothing.
    pub async fn check(&self, progress: &dyn Progress) -> Result<Readiness> {
        let preflight = run_preflight(&self.sessions, &self.preflight, progress).await?;
        let hosts = preflight.sizing_hosts();
        let sizing = if hosts.is_empty() {
            None
        } else {
            Some(size(&SizingInput {
                hosts,
                storage: preflight.sizing_storage(),
                vms: self.protect.clone(),
                params: Default::default(),
            })?)
        };
        let passed = preflight.passed() && sizing.as_ref().is_none_or(|s| s.ok);
        let summary = match (&sizing, preflight.passed()) {
            (Some(s), true) if !s.ok => format!(
                "{} But the hosts are too small for N+1: {}",
                preflight.summary,
                s.problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            _ => preflight.summary.clone(),
        };
        Ok(Readiness {
            passed,
            summary,
            preflight,
            sizing,
        })
    }

    /// The steps the setup takes, in order. Changes nothing.
    pub fn plan(&self) -> Result<Plan> {
        build_plan(
            &self.nodes,
            &SetupInput {
                twofold_public_key: self.public_key.clone(),
            },
        )
    }

    /// Apply the plan, recording each step as a job in `jobs` (resuming an earlier run that did
    /// not finish). A failed or cancelled run is a report, not an error: see
    /// [`ApplyReport::into_result`]. After a completed run the nodes are recorded in the
    /// inventory at `jobs`, reached with Twofold's key from now on.
    pub async fn apply(
        &self,
        jobs: &Path,
        progress: &dyn Progress,
        cancel: &ApplyCancel,
    ) -> Result<ApplyReport> {
        let plan = self.plan()?;
        let report = apply::apply(&plan, &self.ctx(), jobs, progress, cancel).await?;
        if report.outcome == apply::ApplyOutcome::Completed {
            let inv = Inventory::open(jobs)?;
            connect::record_nodes(&inv, &self.nodes.nodes, &self.twofold_key)?;
        }
        Ok(report)
    }

    /// Check every step's end state on the nodes, independently of what apply believed.
    pub async fn verify(&self) -> Result<VerifyReport> {
        let plan = self.plan()?;
        Ok(apply::verify(&plan, &self.ctx()).await)
    }

    fn ctx(&self) -> StepCtx {
        StepCtx::new(SshRunner::new(
            self.sessions.iter().map(|(_, s)| Arc::clone(s)),
        ))
    }
}

/// The whole path in one call: connect, check (refusing with nothing changed when the machines
/// are not ready), apply. Returns the completed run's report; a failed or cancelled run is an
/// error ([`Error::StepFailed`], [`Error::Cancelled`]).
pub async fn provision(
    req: SetupRequest,
    jobs: &Path,
    progress: &dyn Progress,
    cancel: &ApplyCancel,
) -> Result<ApplyReport> {
    let setup = Setup::connect(req).await?;
    setup.check(progress).await?.require()?;
    setup.apply(jobs, progress, cancel).await?.into_result()
}

fn read_public_key(private: &Path) -> Result<String> {
    let public = private.with_extension("pub");
    let line = std::fs::read_to_string(&public)
        .ctx(|| format!("reading Twofold's public key {}", public.display()))?;
    Ok(line.trim().to_string())
}
