//! `twofold setup plan|apply|verify --nodes FILE`: the setup wizard's engine from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use twofold::inventory::Inventory;
use twofold::node::Secret;
use twofold::nodes::NodeList;
use twofold::provision::apply::{self, ApplyCancel};
use twofold::provision::connect::{self, Credentials};
use twofold::provision::plan::{Plan, SshRunner, StepCtx};
use twofold::provision::setup::{build_plan, SetupInput};
use twofold::provision::{run_preflight, size, CheckResult, PreflightOptions, SizingInput, Status};

use super::progress::TermProgress;
use super::Cli;

#[derive(Subcommand)]
pub enum SetupCmd {
    /// Print the steps the setup would take (nothing changes).
    Plan(SetupArgs),
    /// Run the plan: every step idempotent, recorded as a job; resumes after an interruption.
    Apply(SetupArgs),
    /// Check the end state on every node, independently of what apply did.
    Verify(SetupArgs),
}

#[derive(Args)]
pub struct SetupArgs {
    /// The node list (the format `twofold lab nodes` prints).
    #[arg(long, value_name = "FILE")]
    nodes: PathBuf,
    /// A file holding root's password, for machines that do not trust Twofold's key yet
    /// (TWOFOLD_SSH_PASSWORD works too; a password is never taken on the command line).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Accept the host key of nodes the node list pins no key for, and pin it from now on.
    #[arg(long)]
    trust_first_contact: bool,
    /// The VMs to protect (TOML, [[vm]] tables): each host alone must carry the critical ones.
    #[arg(long, value_name = "FILE")]
    protect: Option<PathBuf>,
    /// Accept hosts without hardware virtualization (QEMU emulation: a lab or a trial only).
    #[arg(long)]
    allow_emulation: bool,
    #[arg(long)]
    json: bool,
}

pub fn run(cli: &Cli, cmd: &SetupCmd) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(run_async(cli, cmd))
}

async fn run_async(cli: &Cli, cmd: &SetupCmd) -> Result<ExitCode> {
    let args = match cmd {
        SetupCmd::Plan(a) | SetupCmd::Apply(a) | SetupCmd::Verify(a) => a,
    };
    let list = NodeList::load(&args.nodes)?;
    let password = match &args.password_file {
        Some(f) => Some(Secret::new(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the password file {}", f.display()))?
                .trim_end_matches('\n')
                .to_string(),
        )),
        None => std::env::var("TWOFOLD_SSH_PASSWORD").ok().map(Secret::new),
    };
    let db = cli.db();
    let key_dir = connect::key_dir(&db);
    let (key_path, public_key) = connect::ensure_twofold_key(&key_dir).await?;
    let creds = Credentials {
        twofold_key: key_path.clone(),
        password,
        trust_first_contact: args.trust_first_contact,
    };
    // Bad input in files is answered before any machine is contacted.
    let protected = match &args.protect {
        Some(f) => Some(connect::load_protected_vms(f)?),
        None => None,
    };
    let sessions = connect::connect_all(&list, &creds).await?;
    let pinned = NodeList {
        nodes: sessions.iter().map(|(n, _)| n.clone()).collect(),
    };
    for (n, s) in &sessions {
        if list
            .get(&n.name)
            .and_then(|o| o.host_key.as_ref())
            .is_none()
        {
            eprintln!(
                "{}: accepted host key {} on first contact",
                n.name,
                s.fingerprint()
            );
        }
    }
    if !matches!(cmd, SetupCmd::Verify(_)) {
        let opts = PreflightOptions {
            allow_emulation: args.allow_emulation,
            ..PreflightOptions::default()
        };
        let report = run_preflight(&sessions, &opts, &TermProgress::new(args.json)).await?;
        if !args.json {
            print_preflight(&report.results);
        }
        if !report.passed() {
            anyhow::bail!(
                "the machines are not ready, nothing was changed: {}",
                report.summary.trim_end_matches('.')
            );
        }
        if let Some(vms) = protected {
            let sizing = size(&SizingInput {
                hosts: report.sizing_hosts(),
                storage: report.sizing_storage(),
                vms,
                params: Default::default(),
            })?;
            if !sizing.ok {
                for p in &sizing.problems {
                    eprintln!("N+1: {}", p.message);
                }
                anyhow::bail!(
                    "the hosts are too small for N+1: each host alone must carry every critical VM. Nothing was changed"
                );
            }
            if !args.json {
                println!("N+1 sizing: each host alone can carry every critical VM");
            }
        }
    }
    let sessions: Vec<std::sync::Arc<twofold::node::Session>> = sessions
        .into_iter()
        .map(|(_, s)| std::sync::Arc::new(s))
        .collect();
    let plan: Plan = build_plan(
        &pinned,
        &SetupInput {
            twofold_public_key: public_key,
        },
    )?;
    let ctx = StepCtx::new(SshRunner::new(sessions));
    match cmd {
        SetupCmd::Plan(_) => {
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        SetupCmd::Apply(_) => {
            let progress = TermProgress::new(args.json);
            let report = apply::apply(&plan, &ctx, &db, &progress, &ApplyCancel::new()).await?;
            // Without --json the engine's progress already said how it went.
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            let report = report.into_result()?;
            let inv = Inventory::open(&db)?;
            connect::record_nodes(&inv, &pinned.nodes, &key_path)?;
            Ok(if report.failure.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        SetupCmd::Verify(_) => {
            let report = apply::verify(&plan, &ctx).await;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.render_text());
            }
            Ok(if report.all_passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// One line per check; the reason and the fix under the ones that did not pass.
fn print_preflight(results: &[CheckResult]) {
    for r in results {
        let mark = match r.status {
            Status::Pass => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        let peer = r
            .peer
            .as_deref()
            .map(|p| format!(" -> {p}"))
            .unwrap_or_default();
        println!("{mark} {}{peer} {}: {}", r.node, r.check.as_str(), r.found);
        if r.status != Status::Pass {
            println!("       why: {}", r.reason);
            if !r.fix.is_empty() {
                println!("       fix: {}", r.fix);
            }
        }
    }
}
