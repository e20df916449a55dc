//! The window's TypeScript types are generated from the Rust types the commands take and return
//! and the events they send (ts-rs), into `ui/src/bindings/`, and committed: the front end
//! imports them instead of copies written by hand. The test below regenerates them and fails
//! when the committed files differ, so a Rust change that the front end has not caught up with
//! fails `cargo test`; the front end's own typecheck (`npm test`, `npm run build`) then fails
//! where the window no longer fits the new types.

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    use ts_rs::{Config, TS};

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
            twofold::provision::wizard::Rule,
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
        let fresh = read_dir(fresh_dir.path());
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
