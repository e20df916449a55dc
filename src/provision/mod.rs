//! The setup wizard's engine: from the node list to a platform. It checks the machines first
//! ([`preflight`]), sizes the hosts for N+1 against the VMs to protect ([`sizing`]), and later
//! plans and applies the changes.

pub mod apply;
pub mod connect;
pub mod engine;
pub mod plan;
pub mod preflight;
pub mod setup;
pub mod sizing;
pub mod wizard;

pub use engine::{provision, Readiness, Setup, SetupRequest};
pub use preflight::{
    check_peers, run_check, run_preflight, CheckId, CheckResult, NodeFacts, PreflightOptions,
    PreflightReport, RoleLimits, Status,
};
pub use sizing::{size, SizingInput, SizingParams, SizingReport};
