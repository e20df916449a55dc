//! The one error shape the front end sees: `{code, message}`. The UI branches on `code` (the
//! engine's stable [`twofold::Error::code`]) and shows `message`, which already says what failed
//! and what to do next.

use serde::{Deserialize, Serialize};

#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UiError {
    pub code: String,
    pub message: String,
}

impl UiError {
    /// A failure of the shell itself (a panicked worker thread), not of the engine.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        UiError {
            code: "internal".into(),
            message: format!("the desktop app failed internally: {detail}; restart it, and report this if it happens again"),
        }
    }
}

impl From<twofold::Error> for UiError {
    fn from(e: twofold::Error) -> Self {
        UiError {
            code: e.code().into(),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_code_and_message() {
        let e = twofold::Error::Inventory {
            path: "/x/twofold.db".into(),
            detail: "file is not a database".into(),
        };
        let ui = UiError::from(e);
        assert_eq!(ui.code, "inventory");
        assert!(ui.message.contains("/x/twofold.db"), "{}", ui.message);
        let json = serde_json::to_value(&ui).unwrap();
        assert_eq!(json["code"], "inventory");
        assert!(json["message"].is_string());
    }
}
