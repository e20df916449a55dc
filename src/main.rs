//! `twofold`: the command-line front end of the engine (and, later, the headless supervisor).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The engine's threads end in order on every way out of main, a panic included, before the
    // process exits (see `twofold::shutdown`).
    let _engine = twofold::shutdown::Guard::new();
    cli::main()
}
