//! The shared lab fixture: brings the lab up once (idempotent `up`), tears it down at the end.

use std::path::PathBuf;

use twofold::hypervisor::HostTarget;
use twofold::inventory::Inventory;
use twofold::lab::{Lab, UpOptions};
use twofold::progress::NoProgress;

pub struct Ctx {
    pub lab: Lab,
    pub db: PathBuf,
    pub twofold: PathBuf,
    pub hosts: Vec<HostTarget>,
    _tmp: tempfile::TempDir,
}

impl Ctx {
    pub fn up() -> Ctx {
        let tmp = tempfile::tempdir().expect("temp dir");
        let db = tmp.path().join("twofold.db");
        let lab = Lab::new();
        let twofold = PathBuf::from(env!("CARGO_BIN_EXE_twofold"));
        let opts = UpOptions {
            bare: false,
            twofold_exe: twofold.clone(),
            inventory: Some(db.clone()),
        };
        let status = lab
            .up(&opts, &Printer)
            .unwrap_or_else(|e| panic!("lab up: {e}"));
        assert!(status.all_running(), "lab not running: {status:?}");
        let hosts = lab.host_targets().expect("host targets");
        Ctx {
            lab,
            db,
            twofold,
            hosts,
            _tmp: tmp,
        }
    }

    pub fn inventory(&self) -> Inventory {
        Inventory::open(&self.db).expect("inventory")
    }

    /// Run the twofold CLI against this lab's inventory.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(&self.twofold)
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .output()
            .expect("run twofold")
    }
}

/// Lab bring-up messages go to the test output: they say where a failed start stopped.
struct Printer;

impl twofold::progress::Progress for Printer {
    fn begin(&self, phase: &str, _total: Option<u64>) {
        println!("lab: {phase}");
    }
    fn update(&self, _done: u64, _total: Option<u64>) {}
    fn message(&self, line: &str) {
        println!("lab: {line}");
    }
    fn finish(&self) {}
}

pub fn teardown() {
    if std::env::var_os("TWOFOLD_KEEP_LAB").is_some() {
        println!("lab kept up (TWOFOLD_KEEP_LAB)");
        return;
    }
    if let Err(e) = Lab::new().down(&NoProgress) {
        println!("lab down: {e}");
    }
}
