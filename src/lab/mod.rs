//! The four-node lab.
