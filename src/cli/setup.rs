//! `twofold setup plan|apply|verify --nodes FILE`: the setup wizard's engine from the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use twofold::node::Secret;
use twofold::nodes::NodeList;
use twofold::provision::apply::ApplyCancel;
use twofold::provision::connect::{self, Credentials};
use twofold::provision::{CheckResult, PreflightOptions, Setup, SetupRequest, Status};

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
    let (key_path, _) = connect::ensure_twofold_key(&key_dir).await?;
    // Bad input in files is answered before any machine is contacted.
    let protect = match &args.protect {
        Some(f) => connect::load_protected_vms(f)?,
        None => Vec::new(),
    };
    let setup = Setup::connect(SetupRequest {
        nodes: list,
        credentials: Credentials {
            twofold_key: key_path,
            password,
            node_passwords: Default::default(),
            trust_first_contact: args.trust_first_contact,
        },
        protect,
        preflight: PreflightOptions {
            allow_emulation: args.allow_emulation,
            ..PreflightOptions::default()
        },
    })
    .await?;
    for c in setup.first_contacts() {
        eprintln!(
            "{}: accepted host key {} on first contact",
            c.node, c.fingerprint
        );
    }
    if !matches!(cmd, SetupCmd::Verify(_)) {
        let ready = setup.check(&TermProgress::new(args.json)).await?;
        if !args.json {
            print_preflight(&ready.preflight.results);
            if let Some(s) = &ready.sizing {
                for p in &s.problems {
                    eprintln!("N+1: {}", p.message);
                }
                if s.ok && args.protect.is_some() {
                    println!("N+1 sizing: each host alone can carry every critical VM");
                }
            }
        }
        ready.require()?;
    }
    match cmd {
        SetupCmd::Plan(_) => {
            let plan = setup.plan()?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                print!("{}", plan.render_text());
            }
            Ok(ExitCode::SUCCESS)
        }
        SetupCmd::Apply(_) => {
            let progress = TermProgress::new(args.json);
            let report = setup.apply(&db, &progress, &ApplyCancel::new()).await?;
            // Without --json the engine's progress already said how it went.
            if args.json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            report.into_result()?;
            Ok(ExitCode::SUCCESS)
        }
        SetupCmd::Verify(_) => {
            let report = setup.verify().await?;
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
