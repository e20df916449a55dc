//! The window's TypeScript types are generated from the Rust types the commands take and return
//! and the events they send (ts-rs), into `ui/src/bindings/`, and committed: the front end
//! imports them instead of copies written by hand. `Commands.ts` maps every command to its
//! arguments and its answer, taken from the handler functions themselves (their parameter types
//! are checked against the list below, their answer is read from their signature), and the
//! front end calls commands only through that map. The test below regenerates them and fails
//! when the committed files differ, so a Rust change that the front end has not caught up with
//! fails `cargo test`; the front end's own typecheck (`npm test`, `npm run build`) then fails
//! where the window no longer fits the new types.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::path::{Path, PathBuf};

    use tauri::ipc::Channel;
    use tauri::{AppHandle, State};
    use ts_rs::{Config, TS};

    use crate::error::UiError;

    /// A command handler taking `Args` (a tuple of its parameter types) and returning `R`.
    trait Handler<Args, R> {}
    macro_rules! handler {
        ($($a:ident),*) => {
            impl<F, R, $($a),*> Handler<($($a,)*), R> for F where F: Fn($($a),*) -> R {}
        };
    }
    handler!();
    handler!(A);
    handler!(A, B);
    handler!(A, B, C);

    /// What a command answers the window with.
    trait Answer {
        type Value: TS + 'static;
    }
    impl<T: TS + 'static> Answer for Result<T, UiError> {
        type Value = T;
    }
    impl Answer for bool {
        type Value = bool;
    }

    fn answer_async<Args, R, F>(_: &F, cfg: &Config) -> String
    where
        F: Handler<Args, R>,
        R: Future,
        R::Output: Answer,
    {
        <<R::Output as Answer>::Value as TS>::name(cfg)
    }

    fn answer_sync<Args, R, F>(_: &F, cfg: &Config) -> String
    where
        F: Handler<Args, R>,
        R: Answer,
    {
        <R::Value as TS>::name(cfg)
    }

    fn camel(name: &str) -> String {
        let mut out = String::new();
        let mut up = false;
        for c in name.chars() {
            if c == '_' {
                up = true;
            } else if up {
                out.extend(c.to_uppercase());
                up = false;
            } else {
                out.push(c);
            }
        }
        out
    }

    /// One command: `name(params) -> answer`, its parameters written as the handler declares
    /// them (`state T` for managed state, `app` for the app handle, `channel name: T` for a
    /// progress channel); Tauri names the arguments in camelCase.
    macro_rules! command {
        (@rust state $t:ty) => { State<'static, $t> };
        (@rust app) => { AppHandle };
        (@rust channel $n:ident : $t:ty) => { Channel<$t> };
        (@rust $n:ident : $t:ty) => { $t };
        (@ts $cfg:ident state $t:ty) => { None::<String> };
        (@ts $cfg:ident app) => { None::<String> };
        (@ts $cfg:ident channel $n:ident : $t:ty) => {
            Some(format!("{}: Channel<{}>", camel(stringify!($n)), <$t as TS>::name(&$cfg)))
        };
        (@ts $cfg:ident $n:ident : $t:ty) => {
            Some(format!("{}: {}", camel(stringify!($n)), <$t as TS>::name(&$cfg)))
        };
        ($cfg:ident, $how:ident, $path:path, [$( ( $($p:tt)* ) ),*]) => {{
            let answer = $how::<($(command!(@rust $($p)*),)*), _, _>(&$path, &$cfg);
            let args: Vec<String> = Vec::<Option<String>>::from([$(command!(@ts $cfg $($p)*)),*])
                .into_iter()
                .flatten()
                .collect::<Vec<String>>();
            let name = stringify!($path).rsplit("::").next().unwrap().trim().to_string();
            (name, args, answer)
        }};
    }

    /// The commands `main.rs` hands to Tauri (`generate_handler![...]`), by name, in order.
    fn registered() -> Vec<String> {
        let main = include_str!("main.rs");
        let start = main
            .find("generate_handler![")
            .expect("main.rs registers its commands with generate_handler!");
        let list = &main[start + "generate_handler![".len()..];
        let list = &list[..list.find(']').expect("the handler list ends")];
        list.split(',')
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| p.rsplit("::").next().unwrap().to_string())
            .collect()
    }

    /// `Commands.ts`: every command the window may call, with its arguments and its answer.
    fn commands_ts(known: &[String]) -> String {
        let cfg = Config::new().with_large_int("number");
        let commands = vec![
            command!(cfg, answer_async, crate::commands::list_nodes, [(state crate::commands::Db)]),
            command!(cfg, answer_async, crate::commands::list_vms, [(state crate::commands::Db)]),
            command!(cfg, answer_async, crate::commands::recent_events, [(state crate::commands::Db), (limit: usize)]),
            command!(cfg, answer_async, crate::commands::vm_migrate, [(vm: String), (to: String), (channel on_progress: twofold::progress::ProgressEvent)]),
            command!(cfg, answer_async, crate::status::platform_status, [(state std::sync::Arc<crate::status::Watch>)]),
            command!(cfg, answer_async, crate::status::status_history, [(state std::sync::Arc<crate::status::Watch>)]),
            command!(cfg, answer_async, crate::wizard::wizard_load, []),
            command!(cfg, answer_async, crate::wizard::wizard_save, [(state: serde_json::Value)]),
            command!(cfg, answer_async, crate::wizard::wizard_clear, []),
            command!(cfg, answer_async, crate::wizard::scan_host_keys, [(machines: Vec<crate::wizard::MachineInput>)]),
            command!(cfg, answer_async, crate::wizard::setup_preflight, [(state crate::wizard::WizardRuns), (request: crate::wizard::RequestIn), (channel on_progress: twofold::progress::ProgressEvent)]),
            command!(cfg, answer_async, crate::wizard::setup_plan, [(request: crate::wizard::RequestIn)]),
            command!(cfg, answer_async, crate::wizard::setup_apply, [(state crate::wizard::WizardRuns), (request: crate::wizard::RequestIn), (channel on_progress: twofold::progress::ProgressEvent)]),
            command!(cfg, answer_async, crate::wizard::setup_cancel, [(state crate::wizard::WizardRuns)]),
            command!(cfg, answer_async, crate::wizard::setup_verify, [(state crate::wizard::WizardRuns), (request: crate::wizard::RequestIn)]),
            command!(cfg, answer_async, crate::wizard::scorecard, [(state crate::wizard::WizardRuns)]),
            command!(cfg, answer_async, crate::wizard::lab_try, [(channel on_progress: twofold::progress::ProgressEvent)]),
            command!(cfg, answer_sync, crate::smoke::smoke_enabled, [(state crate::smoke::Smoke)]),
            command!(cfg, answer_sync, crate::smoke::smoke_report, [(app), (state crate::smoke::Smoke), (report: crate::smoke::SmokeReport)]),
            command!(cfg, answer_async, crate::lifecycle::quit_app, [(app), (state crate::wizard::WizardRuns)]),
        ];
        assert_eq!(
            commands.iter().map(|c| c.0.clone()).collect::<Vec<_>>(),
            registered(),
            "the commands listed here differ from the ones main.rs registers: list every registered command here, in the same order"
        );
        let mut body = String::from("export type Commands = {\n");
        for (name, args, answer) in &commands {
            let args = if args.is_empty() {
                "{}".to_string()
            } else {
                format!("{{ {} }}", args.join("; "))
            };
            body.push_str(&format!(
                "  {name}: {{ args: {args}; answer: {answer} }};\n"
            ));
        }
        // The wizard's saved state is the window's own: the app stores it without reading it.
        let mut body = body.replace("JsonValue", "unknown");
        body.push_str("};\n");
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let used: Vec<&String> = known
            .iter()
            .filter(|k| {
                body.match_indices(k.as_str()).any(|(i, _)| {
                    !body[..i].ends_with(is_word) && !body[i + k.len()..].starts_with(is_word)
                })
            })
            .collect();
        let mut out = String::from("// Generated from the command handlers by src-tauri/src/bindings.rs. Do not edit this file manually.\n");
        if body.contains("Channel<") {
            out.push_str("import type { Channel } from \"@tauri-apps/api/core\";\n");
        }
        for k in used {
            out.push_str(&format!("import type {{ {k} }} from \"./{k}\";\n"));
        }
        out.push_str("\n/** Every command the window may call: its arguments (camelCase, as Tauri names them) and its answer. */\n");
        out.push_str(&body);
        out
    }

    /// Every type that crosses the window's boundary, with what it uses.
    fn export_all(dir: &Path) {
        // serde_json writes 64-bit integers as JSON numbers: they are `number` on the other side.
        let cfg = Config::new().with_large_int("number").with_out_dir(dir);
        macro_rules! export {
            ($($t:ty),* $(,)?) => {
                $(<$t as TS>::export_all(&cfg).unwrap_or_else(|e| {
                    panic!("exporting {}: {e}", stringify!($t))
                });)*
            };
        }
        export!(
            crate::error::UiError,
            // commands.rs
            twofold::nodes::NodeSpec,
            twofold::inventory::VmRecord,
            twofold::inventory::Event,
            twofold::hypervisor::MigrationStats,
            twofold::progress::ProgressEvent,
            // status.rs
            twofold::status::PlatformStatus,
            crate::status::Point,
            // wizard.rs
            crate::wizard::MachineInput,
            crate::wizard::RequestIn,
            crate::wizard::HostKeySeen,
            crate::wizard::PreflightView,
            crate::wizard::PlanView,
            twofold::provision::apply::ApplyReport,
            twofold::provision::apply::VerifyReport,
            twofold::provision::wizard::Scorecard,
            crate::wizard::LabMachines,
            // smoke.rs
            crate::smoke::SmokeReport,
        );
    }

    fn read_dir(dir: &Path) -> BTreeMap<String, String> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return BTreeMap::new();
        };
        entries
            .map(|e| e.expect("reading a bindings folder entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "ts"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&p)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
                (name, text)
            })
            .collect()
    }

    fn committed_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/src/bindings")
    }

    #[test]
    fn the_committed_typescript_types_are_the_ones_rust_generates() {
        let fresh_dir = tempfile::tempdir().unwrap();
        export_all(fresh_dir.path());
        let mut fresh = read_dir(fresh_dir.path());
        let known: Vec<String> = fresh
            .keys()
            .map(|k| k.trim_end_matches(".ts").to_string())
            .collect();
        fresh.insert("Commands.ts".into(), commands_ts(&known));
        assert!(fresh.len() > 10, "only {} files generated", fresh.len());
        let dir = committed_dir();
        let committed = read_dir(&dir);
        if fresh == committed {
            return;
        }
        let changed: Vec<&str> = fresh
            .keys()
            .chain(committed.keys())
            .filter(|k| fresh.get(*k) != committed.get(*k))
            .map(String::as_str)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        // Written in place, so that the fix is to look at the diff and commit it.
        std::fs::create_dir_all(&dir).unwrap();
        for name in committed.keys().filter(|k| !fresh.contains_key(*k)) {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
        for (name, text) in &fresh {
            std::fs::write(dir.join(name), text).unwrap();
        }
        panic!(
            "the TypeScript types in {} were not the ones the Rust types give ({}); they are regenerated now: check `git diff ui/src/bindings`, make the front end fit them (`cd ui && npm run build`), and commit them",
            dir.display(),
            changed.join(", ")
        );
    }
}
