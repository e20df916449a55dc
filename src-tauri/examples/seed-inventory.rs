//! Seed an inventory with a small, fixed platform (two nodes, one VM, two events) for the desktop
//! smoke test and for trying the window by hand:
//! `cargo run -p twofold-desktop --example seed-inventory -- /tmp/twofold.db`

use std::path::PathBuf;
use std::process::ExitCode;

use twofold::inventory::{Inventory, Severity};
use twofold::nodes::{NodeSpec, Role};

fn node(name: &str, role: Role, address: &str) -> NodeSpec {
    NodeSpec {
        name: name.into(),
        role,
        address: address.into(),
        ssh_port: 22,
        user: "root".into(),
        key: None,
        host_key: None,
    }
}

fn seed(inv: &Inventory) -> twofold::Result<()> {
    inv.upsert_node(&node("smoke-host1", Role::Host, "10.251.77.11"))?;
    inv.upsert_node(&node("smoke-stor1", Role::Storage, "10.251.77.21"))?;
    inv.record_vm(
        "smoke-web",
        "6f1c2a9e-0b7d-4c1e-9a51-3d2f8e7b4c10",
        Some("smoke-host1"),
        "running",
        2,
        2048,
    )?;
    inv.add_event(Severity::Info, "smoke-host1", "node added to the inventory")?;
    inv.add_event(Severity::Warning, "smoke-stor1", "replica is catching up")?;
    Ok(())
}

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: seed-inventory PATH");
        return ExitCode::from(2);
    };
    match Inventory::open(&path).and_then(|inv| seed(&inv)) {
        Ok(()) => {
            println!("seeded {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed-inventory: [{}] {e}", e.code());
            ExitCode::FAILURE
        }
    }
}
