//! Where segments are kept: this machine's shared memory, or a Redis server.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::{Error, Result};

/// The lease of a remote lock, and of a remote handle's hold on an
/// until-last-close segment, unless the URL says otherwise (`?lease=SECS`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(5);

/// How long a remote call waits for the server, unless the URL says
/// otherwise (`?timeout=SECS`).
pub const DEFAULT_NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// Where segments are kept.
///
/// `Local` is this machine's shared memory. `Redis` is a Redis server,
/// named by a URL, so that processes on several machines share segments
/// (with the crate's `redis` feature; see docs/REMOTE.md).
///
/// ```
/// use shmbox::Location;
///
/// assert_eq!("local".parse::<Location>()?, Location::Local);
/// let remote: Location = "redis://alice:secret@cache.example:6379/2?lease=2".parse()?;
/// assert_eq!(remote.to_string(), "redis://alice:***@cache.example:6379/2"); // no password
/// assert!("http://example.com".parse::<Location>().is_err());
/// # Ok::<(), shmbox::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Location {
    /// This machine's shared memory (`/dev/shm` on Linux).
    #[default]
    Local,
    /// A Redis server.
    Redis(RedisLocation),
}

/// A Redis server that keeps segments: `redis://[user:password@]host[:port][/db]`,
/// with optional parameters `?lease=SECS` (the lease of locks and of
/// until-last-close handles, [`DEFAULT_LEASE`]) and `&timeout=SECS` (the
/// longest wait for the server, [`DEFAULT_NETWORK_TIMEOUT`]).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisLocation {
    /// What the client connects to: the URL without shmbox's parameters.
    url: String,
    /// The URL with any password hidden, for messages.
    shown: String,
    lease: Duration,
    timeout: Duration,
}

impl fmt::Debug for RedisLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("RedisLocation")
            .field("url", &self.shown)
            .field("lease", &self.lease)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl RedisLocation {
    /// Parses a `redis://` or `rediss://` URL with shmbox's parameters.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLocation`] for another scheme, no host, or a bad
    /// parameter.
    ///
    /// ```
    /// let at = shmbox::RedisLocation::parse("redis://127.0.0.1:6379?lease=1.5&timeout=2")?;
    /// assert_eq!(at.lease(), std::time::Duration::from_millis(1500));
    /// assert_eq!(at.network_timeout(), std::time::Duration::from_secs(2));
    /// # Ok::<(), shmbox::Error>(())
    /// ```
    pub fn parse(url: &str) -> Result<RedisLocation> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(scheme, _)| matches!(*scheme, "redis" | "rediss"))
            .ok_or_else(|| invalid(url, "a remote location is a redis:// or rediss:// URL"))?;
        let (base, query) = match rest.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (rest, None),
        };
        let (authority, path) = match base.find('/') {
            Some(at) => base.split_at(at),
            None => (base, ""),
        };
        let (userinfo, host) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err(invalid(url, "it names no host"));
        }
        let shown_userinfo = userinfo.map(|u| match u.split_once(':') {
            Some((user, _)) => format!("{user}:***@"),
            None => format!("{u}@"),
        });
        let shown = format!(
            "{scheme}://{}{host}{path}",
            shown_userinfo.unwrap_or_default()
        );
        let mut location = RedisLocation {
            url: format!("{scheme}://{base}"),
            shown,
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_NETWORK_TIMEOUT,
        };
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let seconds = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        invalid(
                            &location.shown,
                            &format!("{key} must be a number of seconds above 0, not {value:?}"),
                        )
                    })
            };
            match key {
                "lease" => location.lease = seconds()?.max(Duration::from_millis(100)),
                "timeout" => location.timeout = seconds()?,
                _ => {
                    return Err(invalid(
                        &location.shown,
                        &format!("unknown parameter {key:?} (shmbox knows lease and timeout)"),
                    ));
                }
            }
        }
        Ok(location)
    }

    /// The URL the client connects to (with the password, without shmbox's
    /// parameters). Do not print it: [`Display`](fmt::Display) hides the
    /// password.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How long a lock's lease, and an until-last-close handle's, lasts
    /// without renewal. A holder renews it in the background while it
    /// holds it; one that dies, or is cut off, loses it this long after.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// The same location with another lease (at least 100 ms).
    pub fn with_lease(mut self, lease: Duration) -> RedisLocation {
        self.lease = lease.max(Duration::from_millis(100));
        self
    }

    /// The longest wait for the server in any one call.
    pub fn network_timeout(&self) -> Duration {
        self.timeout
    }

    /// The same location with another network timeout.
    pub fn with_network_timeout(mut self, timeout: Duration) -> RedisLocation {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

impl fmt::Display for RedisLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

fn invalid(location: &str, reason: &str) -> Error {
    Error::InvalidLocation {
        location: location.to_owned(),
        reason: reason.to_owned(),
    }
}

impl Location {
    /// Parses `local`, or a `redis://` URL (see [`RedisLocation`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidLocation`].
    pub fn parse(location: &str) -> Result<Location> {
        match location.trim() {
            "" | "local" => Ok(Location::Local),
            url if url.contains("://") => RedisLocation::parse(url).map(Location::Redis),
            other => Err(invalid(
                other,
                "use a redis:// URL for a Redis server, or \"local\" for this machine",
            )),
        }
    }

    /// Whether this is this machine's shared memory.
    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local)
    }
}

impl FromStr for Location {
    type Err = Error;

    fn from_str(s: &str) -> Result<Location> {
        Location::parse(s)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Local => f.write_str("local"),
            Location::Redis(redis) => fmt::Display::fmt(redis, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        for (url, shown) in [
            ("redis://u:p%40ss@h:1/0", "redis://u:***@h:1/0"),
            ("redis://:pw@h", "redis://:***@h"),
            ("redis://user@h", "redis://user@h"),
            ("rediss://h:6380", "rediss://h:6380"),
        ] {
            let at = RedisLocation::parse(url).unwrap();
            assert_eq!(at.to_string(), shown);
            assert!(!format!("{at:?}").contains("pw"));
        }
    }

    #[test]
    fn parameters_are_parsed_and_removed() {
        let at = RedisLocation::parse("redis://h:1/3?timeout=0.5&lease=2").unwrap();
        assert_eq!(at.url(), "redis://h:1/3");
        assert_eq!(at.lease(), Duration::from_secs(2));
        assert_eq!(at.network_timeout(), Duration::from_millis(500));
    }

    #[test]
    fn bad_locations_say_why() {
        for (text, reason) in [
            ("http://h", "redis:// or rediss://"),
            ("redis://", "no host"),
            ("redis://h?lease=0", "above 0"),
            ("redis://h?lease=x", "above 0"),
            ("redis://h?colour=red", "unknown parameter"),
            ("somewhere", "redis:// URL"),
        ] {
            match Location::parse(text) {
                Err(Error::InvalidLocation { reason: r, .. }) => assert!(r.contains(reason), "{r}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert_eq!(Location::parse("local").unwrap(), Location::Local);
    }
}
