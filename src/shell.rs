//! Quoting for the POSIX shell that runs Twofold's commands on the nodes (over SSH, the login
//! shell of the node's user): the one place that turns a path, a name or a script into a single
//! shell word, so that no value can ever become a second command.

/// `s` as one word for a POSIX shell. Inside single quotes every byte stands for itself, so the
/// only character to take care of is the single quote, written as `'\''` (close the quotes, an
/// escaped quote, open them again). A NUL cannot travel in a command line at all; callers pass
/// validated names and paths, which have none.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_quote;
    use std::process::Command;

    #[test]
    fn quotes_single_quotes_only() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("''"), r"''\'''\'''");
    }

    /// Every character from 1 to 127, and some beyond ASCII, comes back unchanged from the
    /// shells a node may run commands with: one argument, nothing expanded, nothing run.
    #[test]
    fn every_byte_comes_back_as_one_word_from_real_shells() {
        let mut all: String = (1u8..=127).map(char::from).collect();
        all.push_str("é€😀\u{a0}");
        let nasty = [
            all.as_str(),
            "$(touch /tmp/twofold-pwned) `id` ${HOME} $HOME",
            "'; echo injected; '",
            "a\nb\r\nc\td",
            "\\'\\\"",
            "-n",
            "*?[a-z]{1,2}~",
            "!!",
        ];
        for shell in ["sh", "dash", "bash"] {
            if Command::new(shell).arg("-c").arg("true").status().is_err() {
                continue;
            }
            for s in nasty {
                // `printf %s` prints its one argument as it is; `$#` proves it stayed one word.
                let script = format!("set -- {}; printf '%s|%s' \"$#\" \"$1\"", shell_quote(s));
                let out = Command::new(shell).arg("-c").arg(&script).output().unwrap();
                assert!(out.status.success(), "{shell}: {script:?}");
                assert_eq!(
                    String::from_utf8(out.stdout).unwrap(),
                    format!("1|{s}"),
                    "{shell} changed {s:?}"
                );
            }
        }
        assert!(!std::path::Path::new("/tmp/twofold-pwned").exists());
    }
}
