//! One-line errors: `shmbox: error: <what> (<hint>)`, exit status 1.

use std::fmt;
use std::io;

use shmbox::Error;

/// An error to report to the user; `main` prints it and exits with 1.
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Quotes `text` for a shell, if it needs it, for commands we suggest.
pub fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.,:/@%+=".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

impl From<Error> for CliError {
    fn from(err: Error) -> CliError {
        let message = match &err {
            // On Windows a segment lives only while a process holds it, so
            // this command can neither leave one behind nor remove one.
            Error::NotFound { name } if cfg!(windows) => format!(
                "no segment named {name:?} (on Windows a segment exists only while a process \
                 has it open: start the program that shares it, or `shmbox demo {}`)",
                shell_word(name)
            ),
            Error::NotFound { name } => format!(
                "no segment named {name:?} (create it with `shmbox create {} --size 1K`)",
                shell_word(name)
            ),
            Error::AlreadyExists { name } if cfg!(windows) => {
                format!("a segment named {name:?} already exists (write to it)")
            }
            Error::AlreadyExists { name } => format!(
                "a segment named {name:?} already exists (write to it, or remove it with `shmbox rm {}` first)",
                shell_word(name)
            ),
            Error::OutOfRange { offset, size } => {
                format!("offset {offset} is past the end of the segment (it holds {size} bytes)")
            }
            Error::InvalidName { name, reason } => format!(
                "invalid segment name {name:?}: {reason} (use 1 to 200 bytes without '/', '\\' or NUL{})",
                if cfg!(windows) {
                    ", after an optional Global\\ or Local\\"
                } else {
                    ""
                }
            ),
            Error::Timeout {
                name,
                waiting_for: shmbox::WaitFor::Lock,
                timeout,
            } => {
                let holder = shmbox::info(name)
                    .ok()
                    .and_then(|i| i.lock_owner_pid())
                    .map_or(String::from("another process holds it"), |pid| {
                        format!("pid {pid} holds it")
                    });
                format!(
                    "timed out after {} waiting for the lock of segment {name:?} ({holder}; try again, or wait longer with --timeout)",
                    seconds(*timeout)
                )
            }
            Error::Timeout {
                name,
                waiting_for: shmbox::WaitFor::ConsistentRead,
                timeout,
            } => {
                let writer = shmbox::info(name)
                    .ok()
                    .and_then(|i| i.lock_owner_pid())
                    .map_or(String::from("a live writer"), |pid| format!("pid {pid}"));
                format!(
                    "timed out after {} waiting for a write in progress to finish in segment {name:?} ({writer} is in the middle of a write; try again, or wait longer with --timeout)",
                    seconds(*timeout)
                )
            }
            // The library's messages already say what happened and what to do.
            other => with_sources(other),
        };
        CliError(message)
    }
}

impl From<io::Error> for CliError {
    fn from(err: io::Error) -> CliError {
        CliError(err.to_string())
    }
}

/// The error and the chain of its sources, on one line.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// `5s`, `0.5s`.
pub fn seconds(d: std::time::Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(shell_word("orders"), "orders");
        assert_eq!(shell_word("my orders"), "'my orders'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }
}
