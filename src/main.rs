//! `twofold`: the command-line front end of the engine (and, later, the headless supervisor).

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
