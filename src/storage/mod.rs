//! The replicated VM store: where everything lives on the nodes ([`layout`]) and what the
//! GlusterFS volume itself says about its copies ([`volume`]). Both the setup (which builds the
//! store) and the status (which watches it) read from here, so the two never disagree about a
//! path or a name.

pub mod layout;
pub mod volume;
