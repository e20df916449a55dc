//! What the setup wizard will do, before it does it: a [`Plan`] is an ordered list of steps, each
//! acting on one node, each with a stable id, a one-line title, the reason it is needed and what it
//! changes, so that a person can read the plan (and the app can show it, from JSON) before
//! anything is touched. A step is a [`StepAction`]: it can tell whether its desired state is
//! already there ([`StepAction::check`]), bring it about ([`StepAction::apply`]), clean up after a
//! failed attempt ([`StepAction::undo`]) and verify the end state on its own terms
//! ([`StepAction::verify`]). [`super::apply`] runs the plan.
//!
//! Steps reach their node only through a [`NodeRunner`]: [`SshRunner`] runs commands over the
//! nodes' SSH [`Session`]s, [`LocalRunner`] runs them on this machine (tests, the lab).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tracing::debug;

use crate::error::{Error, IoContext, Result};
use crate::node::{CommandOutput, Session};

/// A future of the engine's result type that can move between threads.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// One step of a plan. Implement it with `async fn`s (see the module's tests for examples);
/// [`Plan::push`] takes any implementation.
///
/// The contract the engine relies on:
/// - `check` has no side effects, and says `true` only when the desired state is fully there;
///   applying a plan skips the steps whose `check` says `true` (that is what makes applying
///   again a no-op, and resuming after a failure natural).
/// - `apply` may be run again after an interruption that left its work half-done (the process
///   was killed mid-step, so `undo` never ran): it must cope with its own leftovers.
/// - `undo` removes what a failed `apply` half-did; it is best effort and must be safe to call
///   when `apply` did nothing at all. It is only called after a failed `apply`, never to roll
///   back a step that succeeded. It says whether it took something back ([`Undone::Reverted`])
///   or had nothing to take back ([`Undone::NothingToUndo`]): the user is told exactly that.
/// - `verify` checks the end state independently of `apply` (read back what is there, from
///   another angle if possible), and says why when it fails.
pub trait StepAction: Send + Sync {
    /// Stable identifier, unique in the plan, like `stor1/glusterd-running`: jobs, resume and
    /// the app refer to the step by it, so it must not change between two plans for the same
    /// setup.
    fn id(&self) -> String;
    /// The node the step acts on (a name of the node list).
    fn node(&self) -> &str;
    /// One line for a person: "Start the GlusterFS daemon on stor1".
    fn title(&self) -> String;
    /// Why the step is needed, a few sentences for a person who wants to know.
    fn why(&self) -> String;
    /// What applying it changes on the node, one item per line ("starts glusterd.service",
    /// "writes /etc/glusterfs/glusterd.vol").
    fn changes(&self) -> Vec<String>;
    /// What to do when the step fails, if the step knows better than the generic advice
    /// ("fix the cause above, then run the setup again").
    fn remedy(&self) -> Option<String> {
        None
    }

    /// Is the desired state already there?
    fn check(&self, ctx: &StepCtx) -> impl Future<Output = Result<bool>> + Send;
    /// Bring the desired state about.
    fn apply(&self, ctx: &StepCtx) -> impl Future<Output = Result<()>> + Send;
    /// Undo what a failed `apply` half-did (best effort, safe when nothing was done).
    fn undo(&self, ctx: &StepCtx) -> impl Future<Output = Result<Undone>> + Send;
    /// Independent verification of the end state.
    fn verify(&self, ctx: &StepCtx) -> impl Future<Output = Result<Verdict>> + Send;
}

/// The object-safe form of [`StepAction`] the plan stores; implemented for every step.
pub(crate) trait DynStep: Send + Sync {
    fn check<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, bool>;
    fn apply<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, ()>;
    fn undo<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, Undone>;
    fn verify<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, Verdict>;
}

impl<T: StepAction> DynStep for T {
    fn check<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, bool> {
        Box::pin(StepAction::check(self, ctx))
    }
    fn apply<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, ()> {
        Box::pin(StepAction::apply(self, ctx))
    }
    fn undo<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, Undone> {
        Box::pin(StepAction::undo(self, ctx))
    }
    fn verify<'a>(&'a self, ctx: &'a StepCtx) -> BoxFuture<'a, Verdict> {
        Box::pin(StepAction::verify(self, ctx))
    }
}

/// What a step's [`StepAction::undo`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// It took back what the failed attempt had changed.
    Reverted,
    /// There was nothing to take back: the step has no undo, or its undo found nothing of the
    /// failed attempt.
    NothingToUndo,
}

/// The outcome of verifying one step's end state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", content = "reason", rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    /// The reason, for a person: what was found instead of what was expected.
    Fail(String),
}

impl Verdict {
    pub fn fail(reason: impl Into<String>) -> Verdict {
        Verdict::Fail(reason.into())
    }

    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
}

/// What a person (or the app) sees of a step.
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub id: String,
    pub node: String,
    pub title: String,
    pub why: String,
    pub changes: Vec<String>,
}

/// A step in a plan: its description, taken once when it was added, and its action.
pub(crate) struct PlannedStep {
    pub(crate) info: StepInfo,
    pub(crate) remedy: Option<String>,
    pub(crate) action: Box<dyn DynStep>,
}

/// An ordered list of steps. Serializes as `{"name": ..., "steps": [StepInfo, ...]}`.
pub struct Plan {
    name: String,
    steps: Vec<PlannedStep>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("name", &self.name)
            .field("steps", &self.steps().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for Plan {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct PlanJson<'a> {
            name: &'a str,
            steps: Vec<&'a StepInfo>,
        }
        PlanJson {
            name: &self.name,
            steps: self.steps().collect(),
        }
        .serialize(s)
    }
}

impl Plan {
    /// An empty plan. `name` identifies the setup it belongs to (like `platform`): runs of plans
    /// with the same name are one history in the inventory, which is how a run knows it resumes
    /// an earlier one.
    pub fn new(name: impl Into<String>) -> Plan {
        Plan {
            name: name.into(),
            steps: Vec::new(),
        }
    }

    /// Append a step. Refuses a step without id or node, or whose id the plan already has.
    pub fn push(&mut self, step: impl StepAction + 'static) -> Result<()> {
        let info = StepInfo {
            id: step.id(),
            node: step.node().to_string(),
            title: step.title(),
            why: step.why(),
            changes: step.changes(),
        };
        if info.id.trim().is_empty() || info.node.trim().is_empty() {
            return Err(Error::InvalidInput(format!(
                "plan '{}': the step '{}' has no id or no node; every step needs both",
                self.name, info.title
            )));
        }
        if self.steps.iter().any(|s| s.info.id == info.id) {
            return Err(Error::InvalidInput(format!(
                "plan '{}' has two steps with the id '{}'; step ids must be unique",
                self.name, info.id
            )));
        }
        self.steps.push(PlannedStep {
            info,
            remedy: step.remedy(),
            action: Box::new(step),
        });
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps, in the order they are applied.
    pub fn steps(&self) -> impl Iterator<Item = &StepInfo> + '_ {
        self.steps.iter().map(|s| &s.info)
    }

    pub(crate) fn planned(&self) -> &[PlannedStep] {
        &self.steps
    }

    /// The plan for a person: numbered steps with their title and node, why each is needed and
    /// what it changes.
    pub fn render_text(&self) -> String {
        let mut out = match self.steps.len() {
            0 => format!("Plan '{}': nothing to do.\n", self.name),
            1 => format!("Plan '{}', 1 step:\n", self.name),
            n => format!("Plan '{}', {n} steps:\n", self.name),
        };
        let width = self.steps.len().to_string().len();
        for (i, s) in self.steps().enumerate() {
            let pad = " ".repeat(width + 2);
            out.push_str(&format!("{:>width$}. {} [on {}]\n", i + 1, s.title, s.node));
            if !s.why.is_empty() {
                out.push_str(&format!("{pad}Why: {}\n", s.why));
            }
            for c in &s.changes {
                out.push_str(&format!("{pad}- {c}\n"));
            }
            out.push_str(&format!("{pad}(step {})\n", s.id));
        }
        out
    }
}

/// Runs commands on the nodes. Implement it with an `async fn`.
pub trait NodeRunner: Send + Sync {
    /// Run `command` with a POSIX shell on `node`, feeding it `stdin`; a non-zero exit status is
    /// not an error here (it is in the result), failing to reach the node is.
    fn run(
        &self,
        node: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> impl Future<Output = Result<CommandOutput>> + Send;
}

trait DynRunner: Send + Sync {
    fn run<'a>(
        &'a self,
        node: &'a str,
        command: &'a str,
        stdin: Option<&'a [u8]>,
    ) -> BoxFuture<'a, CommandOutput>;
}

impl<T: NodeRunner> DynRunner for T {
    fn run<'a>(
        &'a self,
        node: &'a str,
        command: &'a str,
        stdin: Option<&'a [u8]>,
    ) -> BoxFuture<'a, CommandOutput> {
        Box::pin(NodeRunner::run(self, node, command, stdin))
    }
}

/// Runs commands over the nodes' SSH sessions, one per node.
#[derive(Debug, Default, Clone)]
pub struct SshRunner {
    sessions: HashMap<String, Arc<Session>>,
}

impl SshRunner {
    /// Each session serves the node it was opened to ([`Session::node`]).
    pub fn new(sessions: impl IntoIterator<Item = Arc<Session>>) -> SshRunner {
        SshRunner {
            sessions: sessions
                .into_iter()
                .map(|s| (s.node().to_string(), s))
                .collect(),
        }
    }

    pub fn insert(&mut self, session: Arc<Session>) {
        self.sessions.insert(session.node().to_string(), session);
    }
}

impl NodeRunner for SshRunner {
    async fn run(&self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<CommandOutput> {
        let Some(session) = self.sessions.get(node) else {
            let mut known: Vec<&str> = self.sessions.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(Error::InvalidInput(format!(
                "a step acts on '{node}', but no SSH connection to '{node}' was opened (connected: {}); add the node to the node list and connect to it first",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )));
        };
        session.exec(command, stdin).await
    }
}

/// Runs commands on this machine with `/bin/sh -c`, whatever the node; the node's name is in
/// the command's environment as `TWOFOLD_NODE`. For tests, and for the lab, whose nodes are
/// reachable from here.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalRunner;

impl LocalRunner {
    pub fn new() -> LocalRunner {
        LocalRunner
    }
}

impl NodeRunner for LocalRunner {
    async fn run(&self, node: &str, command: &str, stdin: Option<&[u8]>) -> Result<CommandOutput> {
        debug!(node, command, "running locally");
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .env("TWOFOLD_NODE", node)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .ctx(|| format!("starting /bin/sh for a command on {node}"))?;
        let pipe = child.stdin.take();
        // Input is written while the output is read, so that a command that answers before it
        // has read all its input cannot block both sides; one that exits without reading it all
        // just drops the rest (a broken pipe is not an error).
        let write = async move {
            if let (Some(mut pipe), Some(data)) = (pipe, stdin) {
                let _ = pipe.write_all(data).await;
            }
        };
        let ((), out) = tokio::join!(write, child.wait_with_output());
        let out = out.ctx(|| format!("waiting for a command on {node}"))?;
        let status = match out.status.code() {
            Some(code) => code as u32,
            None => 128 + out.status.signal().unwrap_or(0) as u32,
        };
        debug!(node, status, "local command done");
        Ok(CommandOutput {
            status,
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }
}

/// What steps get to do their work: run commands on the nodes.
#[derive(Clone)]
pub struct StepCtx {
    runner: Arc<dyn DynRunner>,
}

impl fmt::Debug for StepCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepCtx").finish_non_exhaustive()
    }
}

impl StepCtx {
    pub fn new(runner: impl NodeRunner + 'static) -> StepCtx {
        StepCtx {
            runner: Arc::new(runner),
        }
    }

    /// Run `command` on `node`; the exit status is in the result.
    pub async fn run(
        &self,
        node: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput> {
        self.runner.run(node, command, stdin).await
    }

    /// Run `command` on `node` and turn a non-zero exit status into
    /// [`Error::RemoteCommand`] (`what` names the action: "starting glusterd").
    pub async fn run_ok(
        &self,
        node: &str,
        what: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<CommandOutput> {
        let out = self.run(node, command, stdin).await?;
        if out.success() {
            Ok(out)
        } else {
            Err(out.error(node, what))
        }
    }

    /// Does `command` exit with status 0 on `node`? For checks written as shell tests.
    pub async fn succeeds(&self, node: &str, command: &str) -> Result<bool> {
        Ok(self.run(node, command, None).await?.success())
    }
}

/// Real steps for the engine's tests: they act on files through whatever runner the context has.
#[cfg(test)]
pub(crate) mod test_steps {
    use super::*;
    use crate::shell::shell_quote;

    /// A file with exactly this content and mode.
    pub(crate) struct FileStep {
        pub node: String,
        pub path: String,
        pub content: String,
        pub mode: u32,
    }

    impl FileStep {
        pub fn new(node: &str, path: &std::path::Path, content: &str, mode: u32) -> FileStep {
            FileStep {
                node: node.into(),
                path: path.display().to_string(),
                content: content.into(),
                mode,
            }
        }
        fn tmp(&self) -> String {
            shell_quote(&format!("{}.twofold-tmp", self.path))
        }
    }

    impl StepAction for FileStep {
        fn id(&self) -> String {
            format!("{}/file:{}", self.node, self.path)
        }
        fn node(&self) -> &str {
            &self.node
        }
        fn title(&self) -> String {
            format!("Write {} on {}", self.path, self.node)
        }
        fn why(&self) -> String {
            "The service reads its settings from this file.".into()
        }
        fn changes(&self) -> Vec<String> {
            vec![format!("writes {} (mode {:o})", self.path, self.mode)]
        }
        async fn check(&self, ctx: &StepCtx) -> Result<bool> {
            let p = shell_quote(&self.path);
            let cmd = format!(
                "[ -f {p} ] && [ \"$(stat -c %a {p})\" = {:o} ] && cmp -s - {p}",
                self.mode
            );
            Ok(ctx
                .run(&self.node, &cmd, Some(self.content.as_bytes()))
                .await?
                .success())
        }
        async fn apply(&self, ctx: &StepCtx) -> Result<()> {
            let (p, t) = (shell_quote(&self.path), self.tmp());
            let cmd = format!("cat > {t} && chmod {:o} {t} && mv -f {t} {p}", self.mode);
            ctx.run_ok(
                &self.node,
                &format!("writing {}", self.path),
                &cmd,
                Some(self.content.as_bytes()),
            )
            .await
            .map(drop)
        }
        async fn undo(&self, ctx: &StepCtx) -> Result<Undone> {
            ctx.run_ok(
                &self.node,
                "removing a temporary file",
                &format!("rm -f {}", self.tmp()),
                None,
            )
            .await
            .map(|_| Undone::Reverted)
        }
        async fn verify(&self, ctx: &StepCtx) -> Result<Verdict> {
            let p = shell_quote(&self.path);
            let out = ctx
                .run(&self.node, &format!("stat -c %a {p} && cat {p}"), None)
                .await?;
            if !out.success() {
                return Ok(Verdict::fail(format!(
                    "{} is missing on {}",
                    self.path, self.node
                )));
            }
            let text = out.stdout_text();
            let (mode, content) = text.split_once('\n').unwrap_or((&text, ""));
            if mode != format!("{:o}", self.mode) {
                return Ok(Verdict::fail(format!(
                    "{} has mode {mode}, expected {:o}",
                    self.path, self.mode
                )));
            }
            if content != self.content {
                return Ok(Verdict::fail(format!(
                    "{} does not have the expected content",
                    self.path
                )));
            }
            Ok(Verdict::Pass)
        }
    }

    /// A directory with this mode.
    pub(crate) struct DirStep {
        pub node: String,
        pub path: String,
        pub mode: u32,
    }

    impl StepAction for DirStep {
        fn id(&self) -> String {
            format!("{}/dir:{}", self.node, self.path)
        }
        fn node(&self) -> &str {
            &self.node
        }
        fn title(&self) -> String {
            format!("Create the folder {} on {}", self.path, self.node)
        }
        fn why(&self) -> String {
            "The data lives there, readable by the service only.".into()
        }
        fn changes(&self) -> Vec<String> {
            vec![format!("creates {} with mode {:o}", self.path, self.mode)]
        }
        async fn check(&self, ctx: &StepCtx) -> Result<bool> {
            let p = shell_quote(&self.path);
            ctx.succeeds(
                &self.node,
                &format!("[ -d {p} ] && [ \"$(stat -c %a {p})\" = {:o} ]", self.mode),
            )
            .await
        }
        async fn apply(&self, ctx: &StepCtx) -> Result<()> {
            let p = shell_quote(&self.path);
            ctx.run_ok(
                &self.node,
                &format!("creating {}", self.path),
                &format!("mkdir -p {p} && chmod {:o} {p}", self.mode),
                None,
            )
            .await
            .map(drop)
        }
        async fn undo(&self, _ctx: &StepCtx) -> Result<Undone> {
            // mkdir and chmod leave nothing half-done.
            Ok(Undone::NothingToUndo)
        }
        async fn verify(&self, ctx: &StepCtx) -> Result<Verdict> {
            let p = shell_quote(&self.path);
            let out = ctx
                .run(&self.node, &format!("[ -d {p} ] && stat -c %a {p}"), None)
                .await?;
            let mode = out.stdout_text().trim().to_string();
            Ok(if !out.success() {
                Verdict::fail(format!("{} is not a folder on {}", self.path, self.node))
            } else if mode != format!("{:o}", self.mode) {
                Verdict::fail(format!(
                    "{} has mode {mode}, expected {:o}",
                    self.path, self.mode
                ))
            } else {
                Verdict::Pass
            })
        }
    }

    /// `output` = a header line + `input`, where `input` must start with "ok". Its apply writes
    /// the header before it looks at the input, so a bad input leaves a partial file for `undo`.
    pub(crate) struct RenderStep {
        pub node: String,
        pub input: String,
        pub output: String,
    }

    impl RenderStep {
        fn expected(&self) -> String {
            format!(
                "{{ printf '# generated\\n'; cat {}; }}",
                shell_quote(&self.input)
            )
        }
    }

    impl StepAction for RenderStep {
        fn id(&self) -> String {
            format!("{}/render:{}", self.node, self.output)
        }
        fn node(&self) -> &str {
            &self.node
        }
        fn title(&self) -> String {
            format!("Generate {} on {}", self.output, self.node)
        }
        fn why(&self) -> String {
            "Generated from the settings the user gave.".into()
        }
        fn changes(&self) -> Vec<String> {
            vec![format!("writes {}", self.output)]
        }
        fn remedy(&self) -> Option<String> {
            Some(format!(
                "Correct {} (its first line must start with 'ok'), then run the setup again",
                self.input
            ))
        }
        async fn check(&self, ctx: &StepCtx) -> Result<bool> {
            let o = shell_quote(&self.output);
            ctx.succeeds(
                &self.node,
                &format!("[ -f {o} ] && {} | cmp -s - {o}", self.expected()),
            )
            .await
        }
        async fn apply(&self, ctx: &StepCtx) -> Result<()> {
            let (i, o) = (shell_quote(&self.input), shell_quote(&self.output));
            let cmd = format!(
                "printf '# generated\\n' > {o} && {{ head -n 1 {i} | grep -q '^ok' || {{ echo \"{} is not valid: its first line must start with ok\" >&2; exit 3; }}; }} && cat {i} >> {o}",
                self.input
            );
            ctx.run_ok(
                &self.node,
                &format!("generating {}", self.output),
                &cmd,
                None,
            )
            .await
            .map(drop)
        }
        async fn undo(&self, ctx: &StepCtx) -> Result<Undone> {
            let o = shell_quote(&self.output);
            ctx.run_ok(
                &self.node,
                "removing a partial file",
                &format!("rm -f {o}"),
                None,
            )
            .await
            .map(|_| Undone::Reverted)
        }
        async fn verify(&self, ctx: &StepCtx) -> Result<Verdict> {
            let o = shell_quote(&self.output);
            let out = ctx
                .run(
                    &self.node,
                    &format!("[ -f {o} ] || exit 2; {} | cmp -s - {o}", self.expected()),
                    None,
                )
                .await?;
            Ok(match out.status {
                0 => Verdict::Pass,
                2 => Verdict::fail(format!("{} is missing", self.output)),
                _ => Verdict::fail(format!(
                    "{} is out of date with {}",
                    self.output, self.input
                )),
            })
        }
    }

    /// A step whose apply claims success but changes nothing (a broken step, or a node that
    /// reverts the change).
    pub(crate) struct IneffectiveStep {
        pub node: String,
        pub path: String,
    }

    impl StepAction for IneffectiveStep {
        fn id(&self) -> String {
            format!("{}/ineffective", self.node)
        }
        fn node(&self) -> &str {
            &self.node
        }
        fn title(&self) -> String {
            format!("Create {} on {}", self.path, self.node)
        }
        fn why(&self) -> String {
            String::new()
        }
        fn changes(&self) -> Vec<String> {
            vec![]
        }
        async fn check(&self, ctx: &StepCtx) -> Result<bool> {
            ctx.succeeds(&self.node, &format!("[ -e {} ]", shell_quote(&self.path)))
                .await
        }
        async fn apply(&self, ctx: &StepCtx) -> Result<()> {
            ctx.run_ok(&self.node, "doing nothing", "true", None)
                .await
                .map(drop)
        }
        async fn undo(&self, _ctx: &StepCtx) -> Result<Undone> {
            Ok(Undone::NothingToUndo)
        }
        async fn verify(&self, _ctx: &StepCtx) -> Result<Verdict> {
            Ok(Verdict::Pass)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::test_steps::*;
    use super::*;
    use crate::node::test_sshd::TestSshd;
    use crate::node::{Auth, HostKeyPolicy};

    fn plan(dir: &std::path::Path) -> Plan {
        let mut p = Plan::new("demo");
        p.push(DirStep {
            node: "stor1".into(),
            path: dir.join("data").display().to_string(),
            mode: 0o750,
        })
        .unwrap();
        p.push(FileStep::new(
            "stor1",
            &dir.join("data/app.conf"),
            "x = 1\n",
            0o640,
        ))
        .unwrap();
        p
    }

    #[test]
    fn renders_text_and_json() {
        let p = plan(std::path::Path::new("/srv"));
        assert_eq!(p.len(), 2);
        let text = p.render_text();
        assert_eq!(
            text,
            "Plan 'demo', 2 steps:\n\
             1. Create the folder /srv/data on stor1 [on stor1]\n   \
                Why: The data lives there, readable by the service only.\n   \
                - creates /srv/data with mode 750\n   \
                (step stor1/dir:/srv/data)\n\
             2. Write /srv/data/app.conf on stor1 [on stor1]\n   \
                Why: The service reads its settings from this file.\n   \
                - writes /srv/data/app.conf (mode 640)\n   \
                (step stor1/file:/srv/data/app.conf)\n"
        );
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["name"], "demo");
        assert_eq!(json["steps"][0]["id"], "stor1/dir:/srv/data");
        assert_eq!(json["steps"][1]["node"], "stor1");
        assert_eq!(
            json["steps"][1]["title"],
            "Write /srv/data/app.conf on stor1"
        );
        assert_eq!(
            json["steps"][1]["changes"][0],
            "writes /srv/data/app.conf (mode 640)"
        );
        let back: Vec<StepInfo> = serde_json::from_value(json["steps"].clone()).unwrap();
        assert_eq!(back, p.steps().cloned().collect::<Vec<_>>());
        assert_eq!(Plan::new("x").render_text(), "Plan 'x': nothing to do.\n");
    }

    #[test]
    fn refuses_duplicate_and_empty_ids() {
        let mut p = plan(std::path::Path::new("/srv"));
        let err = p
            .push(FileStep::new(
                "stor1",
                std::path::Path::new("/srv/data/app.conf"),
                "other",
                0o600,
            ))
            .unwrap_err();
        assert_eq!(err.code(), "invalid_input");
        assert!(err.to_string().contains("two steps with the id"), "{err}");
        let err = p
            .push(FileStep::new("", std::path::Path::new("/x"), "", 0o600))
            .unwrap_err();
        assert!(err.to_string().contains("no id or no node"), "{err}");
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn verdict_json() {
        assert_eq!(
            serde_json::to_value(Verdict::Pass).unwrap(),
            serde_json::json!({"result": "pass"})
        );
        assert_eq!(
            serde_json::to_value(Verdict::fail("gone")).unwrap(),
            serde_json::json!({"result": "fail", "reason": "gone"})
        );
    }

    #[tokio::test]
    async fn local_runner_status_output_stdin_and_signals() {
        let ctx = StepCtx::new(LocalRunner::new());
        let out = ctx
            .run(
                "n1",
                "echo \"$TWOFOLD_NODE\"; cat; echo err >&2; exit 7",
                Some(b"in\n"),
            )
            .await
            .unwrap();
        assert_eq!(out.status, 7);
        assert_eq!(out.stdout_text(), "n1\nin\n");
        assert_eq!(out.stderr_text(), "err\n");
        // A command that does not read its (large) input still ends.
        let big = vec![b'x'; 4 << 20];
        let out = ctx.run("n1", "echo done", Some(&big)).await.unwrap();
        assert_eq!((out.status, out.stdout_text().as_ref()), (0, "done\n"));
        let out = ctx.run("n1", "kill -TERM $$", None).await.unwrap();
        assert_eq!(out.status, 128 + 15);

        let err = ctx
            .run_ok("n1", "testing", "echo nope >&2; false", None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "remote_command");
        assert_eq!(
            err.to_string(),
            "testing on n1 failed (exit status 1): nope"
        );
        assert!(ctx.succeeds("n1", "true").await.unwrap());
        assert!(!ctx.succeeds("n1", "false").await.unwrap());
    }

    /// The same steps, through a real sshd on loopback.
    #[tokio::test]
    async fn steps_run_over_ssh() {
        let sshd = TestSshd::start();
        let session = Session::connect(
            &sshd.target(),
            &Auth::KeyFile(sshd.client_key.clone()),
            &HostKeyPolicy::Pinned(sshd.host_key()),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|e| panic!("connect failed: {e}\nsshd log:\n{}", sshd.log()));
        let ctx = StepCtx::new(SshRunner::new([Arc::new(session)]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("over-ssh.conf");
        let step = FileStep::new("testnode", &path, "via ssh\n", 0o600);
        let step: &dyn DynStep = &step;
        assert!(!step.check(&ctx).await.unwrap());
        step.apply(&ctx).await.unwrap();
        assert!(step.check(&ctx).await.unwrap());
        assert_eq!(step.verify(&ctx).await.unwrap(), Verdict::Pass);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "via ssh\n");

        let err = ctx.run("stor9", "true", None).await.unwrap_err();
        assert!(
            err.to_string().contains("no SSH connection to 'stor9'")
                && err.to_string().contains("connected: testnode"),
            "{err}"
        );
    }
}
