//! Telling a person that something changed: desktop notifications through the freedesktop
//! notification service (`notify-rust`, feature `notify`). A desktop without a notification
//! server, or without a session bus at all, is normal (a server, a bare X session in CI): sending
//! then fails with a reason the caller logs, and nothing else depends on it. This module knows
//! nothing of what it announces: the status loop decides the words and how loud they are.

/// How loud a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Urgency {
    Normal,
    Critical,
}

/// Show one desktop notification. Errors are for logging only: callers must go on.
#[cfg(feature = "notify")]
pub fn desktop(app_name: &str, title: &str, body: &str, urgency: Urgency) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname(app_name)
        .summary(title)
        .body(body)
        .icon("dialog-warning")
        .urgency(match urgency {
            Urgency::Normal => notify_rust::Urgency::Normal,
            Urgency::Critical => notify_rust::Urgency::Critical,
        })
        .show()
        .map(|_| ())
        .map_err(|e| {
            format!(
                "no desktop notification could be shown ({e}); the tray icon still shows the state"
            )
        })
}

/// Without the `notify` feature there is no notification service to reach.
#[cfg(not(feature = "notify"))]
pub fn desktop(
    _app_name: &str,
    _title: &str,
    _body: &str,
    _urgency: Urgency,
) -> Result<(), String> {
    Err("this build of Twofold has no desktop notifications (feature `notify`)".into())
}

#[cfg(all(test, feature = "notify"))]
mod tests {
    /// Set in the child process that this test starts.
    const CHILD: &str = "TWOFOLD_NOTIFY_CHILD";

    /// With no session bus at all, sending fails with a reason instead of panicking or hanging.
    /// The session bus is chosen by the environment, which a test cannot change for itself
    /// while other tests run: so this test runs itself again in a child process without one, and
    /// the child does the sending. Both halves are this one test, so it passes only when the
    /// child really sent and failed as it should.
    #[test]
    fn no_session_bus_is_an_error_not_a_crash() {
        if std::env::var_os(CHILD).is_some() {
            match super::desktop("Twofold", "test", "body", super::Urgency::Normal) {
                Ok(()) => println!("notify sent"),
                Err(e) => println!("notify failed: {e}"),
            }
            return;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "notify::tests::no_session_bus_is_an_error_not_a_crash",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/twofold-bus",
            )
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran the test: {text}");
        assert!(
            text.contains("notify failed: no desktop notification"),
            "{text}"
        );
    }
}
