//! One connection to the server per handle, made on first use and made
//! again after a failure; every call bounded by the location's network
//! timeout; the client's errors turned into shmbox's.

use std::sync::{Mutex, MutexGuard, PoisonError};

use redis::{Connection, RedisError, Value};

use crate::{Error, RedisLocation, Result};

/// A lazily made, self-repairing connection.
pub(crate) struct Link {
    client: redis::Client,
    pub(crate) location: RedisLocation,
    connection: Mutex<Option<Connection>>,
}

impl Link {
    pub(crate) fn new(location: &RedisLocation) -> Result<Link> {
        let client = redis::Client::open(location.url()).map_err(|e| Error::InvalidLocation {
            location: location.to_string(),
            reason: match e.kind() {
                redis::ErrorKind::InvalidClientConfig if location.url().starts_with("rediss") => {
                    "rediss:// (TLS) is not supported by this build of shmbox".to_owned()
                }
                _ => e.to_string(),
            },
        })?;
        Ok(Link {
            client,
            location: location.clone(),
            connection: Mutex::new(None),
        })
    }

    fn slot(&self) -> MutexGuard<'_, Option<Connection>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection, with the network timeout on every read and write.
    pub(crate) fn connect(&self) -> redis::RedisResult<Connection> {
        let timeout = self.location.network_timeout();
        let connection = self.client.get_connection_with_timeout(timeout)?;
        connection.set_read_timeout(Some(timeout))?;
        connection.set_write_timeout(Some(timeout))?;
        Ok(connection)
    }

    /// Runs `f` on the connection, connecting first if there is none. A
    /// connection that failed is dropped, so that the next call connects
    /// again (after a server restart, say).
    pub(crate) fn run<T>(
        &self,
        name: &str,
        operation: &'static str,
        f: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut slot = self.slot();
        if slot.is_none() {
            *slot = Some(
                self.connect()
                    .map_err(|e| remote_error(&self.location, name, operation, &e))?,
            );
        }
        let Some(connection) = slot.as_mut() else {
            unreachable!("connected above")
        };
        match f(connection) {
            Ok(value) => Ok(value),
            Err(e) => {
                if broken(&e) {
                    *slot = None;
                }
                Err(remote_error(&self.location, name, operation, &e))
            }
        }
    }
}

/// Whether the connection is no longer usable after `e`.
pub(crate) fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_unrecoverable_error()
}

/// shmbox's error for the client's `e`, naming the location.
pub(crate) fn remote_error(
    location: &RedisLocation,
    name: &str,
    operation: &'static str,
    e: &RedisError,
) -> Error {
    let text = e.to_string();
    if text.contains("WRONGTYPE") {
        return Error::Corrupt {
            name: name.to_owned(),
            reason: format!(
                "one of its keys at {location} holds another type of value than shmbox keeps there"
            ),
        };
    }
    let reason = if e.kind() == redis::ErrorKind::AuthenticationFailed
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
        // What Redis answers a long request from a client that did not log in.
        || text.contains("unauthenticated")
    {
        "the server refused the credentials (check the user name and password in the URL)"
            .to_owned()
    } else if e.is_connection_refusal() {
        "the connection was refused (is a Redis server running there?)".to_owned()
    } else if e.is_timeout() {
        format!(
            "no answer within {:?} (the server or the network is down or overloaded; \
             raise ?timeout= in the URL to wait longer)",
            location.network_timeout()
        )
    } else if e.is_connection_dropped() || e.is_io_error() {
        format!("the connection failed ({text}); the next call connects again")
    } else {
        text
    };
    Error::Remote {
        name: name.to_owned(),
        location: location.to_string(),
        operation,
        reason,
    }
}

/// A script's reply, taken apart.
pub(crate) struct Reply(Vec<Value>);

impl Reply {
    pub(crate) fn new(value: Value) -> Reply {
        match value {
            Value::Array(items) => Reply(items),
            other => Reply(vec![other]),
        }
    }

    /// The status word (`ok`, `busy`...).
    pub(crate) fn status(&self) -> &str {
        self.0.first().and_then(as_str).unwrap_or("")
    }

    pub(crate) fn int(&self, at: usize) -> i64 {
        match self.0.get(at) {
            Some(Value::Int(n)) => *n,
            Some(v) => as_str(v).and_then(|s| s.parse().ok()).unwrap_or(0),
            None => 0,
        }
    }

    pub(crate) fn text(&self, at: usize) -> String {
        self.0.get(at).and_then(as_str).unwrap_or("").to_owned()
    }

    pub(crate) fn bytes(&self, at: usize) -> &[u8] {
        match self.0.get(at) {
            Some(Value::BulkString(b)) => b,
            Some(Value::SimpleString(s)) => s.as_bytes(),
            _ => &[],
        }
    }

    pub(crate) fn value(&self, at: usize) -> Option<&Value> {
        self.0.get(at)
    }
}

pub(crate) fn as_str(value: &Value) -> Option<&str> {
    match value {
        Value::BulkString(b) => std::str::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        Value::Okay => Some("OK"),
        _ => None,
    }
}
