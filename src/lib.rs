//! Twofold's engine: everything the CLI, the desktop app and the headless supervisor share.
//! Nothing here knows about a GUI or a terminal; front ends report progress through
//! [`progress::Progress`] and show [`Error`]s, whose messages say what failed and what to do.

mod blocking;
pub mod error;
pub mod files;
pub mod hypervisor;
pub mod inventory;
pub mod lab;
#[cfg(feature = "logging")]
pub mod logging;
pub mod node;
pub mod nodes;
pub mod notify;
pub mod platform;
pub mod progress;
pub mod provision;
pub mod rules;
pub mod shell;
pub mod shutdown;
pub mod status;
pub mod storage;
pub mod vm;
pub mod xml;

pub use error::{Error, Result};
