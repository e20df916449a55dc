//! Integration tests against the lab: real libvirtd + QEMU on two namespaced hosts, a real
//! GlusterFS volume on two storage nodes, real sshd everywhere.
//!
//! One binary with its own harness (`harness = false`) so the lab is brought up once, shared by
//! every test, and torn down at the end even when tests fail: libtest has no global teardown.
//! Run as root: `cargo test --test lab [FILTER]`. `TWOFOLD_KEEP_LAB=1` leaves the lab up.

mod bare;
mod fixture;
mod lab_nodes;
mod migration;
mod setup;
mod status;
mod stress;
mod teardown;
mod vms;

use std::panic::AssertUnwindSafe;
use std::time::Instant;

pub use fixture::Ctx;

type TestFn = fn(&Ctx);

/// The tests, in the order they run (teardown tests last: they take the lab down).
const TESTS: &[(&str, TestFn)] = &[
    (
        "lab_nodes::every_node_runs_its_daemons",
        lab_nodes::every_node_runs_its_daemons,
    ),
    (
        "lab_nodes::nodes_have_own_names_and_host_uuids",
        lab_nodes::nodes_have_own_names_and_host_uuids,
    ),
    (
        "lab_nodes::ssh_reaches_every_node_with_pinned_keys",
        lab_nodes::ssh_reaches_every_node_with_pinned_keys,
    ),
    (
        "lab_nodes::store_replicates_to_both_bricks",
        lab_nodes::store_replicates_to_both_bricks,
    ),
    (
        "lab_nodes::up_again_changes_nothing",
        lab_nodes::up_again_changes_nothing,
    ),
    (
        "lab_nodes::node_list_round_trips",
        lab_nodes::node_list_round_trips,
    ),
    (
        "lab_nodes::exec_rejects_unknown_node",
        lab_nodes::exec_rejects_unknown_node,
    ),
    (
        "migration::vm_list_shows_demo_on_host1",
        migration::vm_list_shows_demo_on_host1,
    ),
    (
        "migration::bad_input_changes_nothing",
        migration::bad_input_changes_nothing,
    ),
    (
        "migration::cli_bad_input_exits_nonzero",
        migration::cli_bad_input_exits_nonzero,
    ),
    (
        "migration::target_host_down_is_refused",
        migration::target_host_down_is_refused,
    ),
    (
        "migration::ten_round_trips_lose_nothing",
        migration::ten_round_trips_lose_nothing,
    ),
    (
        "migration::cli_migrate_reports_downtime",
        migration::cli_migrate_reports_downtime,
    ),
    (
        "migration::lifecycle_events_follow_migration",
        migration::lifecycle_events_follow_migration,
    ),
    (
        "stress::killed_libvirtd_comes_back_with_setup",
        stress::killed_libvirtd_comes_back_with_setup,
    ),
    (
        "stress::commands_survive_daemons_dying",
        stress::commands_survive_daemons_dying,
    ),
    (
        "bare::bare_nodes_run_only_sshd_and_take_a_password",
        bare::bare_nodes_run_only_sshd_and_take_a_password,
    ),
    (
        "setup::provisions_bare_nodes_and_refuses_bad_input",
        setup::provisions_bare_nodes_and_refuses_bad_input,
    ),
    (
        "setup::storage_node_power_cut_loses_nothing",
        setup::storage_node_power_cut_loses_nothing,
    ),
    (
        "vms::vm_create_puts_disks_on_the_store",
        vms::vm_create_puts_disks_on_the_store,
    ),
    (
        "vms::host_and_storage_node_lost_together",
        vms::host_and_storage_node_lost_together,
    ),
    (
        "status::one_cut_link_is_one_node_down_and_no_false_event",
        status::one_cut_link_is_one_node_down_and_no_false_event,
    ),
    (
        "teardown::down_after_crash_halfway_leaves_nothing",
        teardown::down_after_crash_halfway_leaves_nothing,
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // libtest-style flags from cargo (e.g. --nocapture) are accepted and ignored.
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in TESTS {
            println!("{name}: test");
        }
        return;
    }
    let selected: Vec<&(&str, TestFn)> = TESTS
        .iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();
    println!("\nrunning {} lab tests", selected.len());

    let started = Instant::now();
    let ctx = match std::panic::catch_unwind(Ctx::up) {
        Ok(ctx) => ctx,
        Err(_) => {
            fixture::teardown();
            println!(
                "\ntest result: FAILED. 0 passed; {} failed; 0 ignored",
                selected.len()
            );
            twofold::shutdown::exit(101);
        }
    };
    println!("lab up in {:.1}s", started.elapsed().as_secs_f64());

    let mut passed = 0;
    let mut failed = Vec::new();
    for (name, f) in selected {
        let t = Instant::now();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| f(&ctx)));
        let secs = t.elapsed().as_secs_f64();
        match r {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({secs:.1}s)");
            }
            Err(_) => {
                failed.push(*name);
                println!("test {name} ... FAILED ({secs:.1}s)");
            }
        }
    }
    drop(ctx);
    fixture::teardown();
    if !failed.is_empty() {
        println!("\nfailures:");
        for f in &failed {
            println!("    {f}");
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {} failed; 0 ignored; finished in {:.1}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    // The engine's threads end in order before the process does (see `twofold::shutdown`).
    if !failed.is_empty() {
        twofold::shutdown::exit(101);
    }
    twofold::shutdown::shutdown();
}
