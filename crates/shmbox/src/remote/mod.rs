//! Segments kept on a Redis server: the same model as local segments (a
//! name, an exact size, bytes at offsets, a lock that survives a dead
//! holder, change notification), for processes on several machines. See
//! docs/REMOTE.md for the guarantees, and `scripts.rs` for the keys.

mod conn;
mod renewer;
mod scripts;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use redis::Value;

use self::conn::{Link, Reply, as_str, remote_error};
use self::renewer::{Lease, Registration};
use crate::sync::{AtomicU64, Ordering};
use crate::{
    Error, Lifetime, LockState, OwnerDied, RedisLocation, Result, SegmentInfo, SegmentName,
    Snapshot, WaitFor,
};

/// The largest remote segment: Redis strings hold up to 512 MiB.
const MAX_SIZE: usize = 512 << 20;

/// How a remote segment is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Open,
    Create,
    OpenOrCreate,
}

/// A segment on a Redis server. Made by
/// [`SegmentOptions::open_at`](crate::SegmentOptions::open_at) and its
/// siblings with a [`Location::Redis`](crate::Location::Redis), usually
/// inside an [`AnySegment`](crate::AnySegment).
pub struct RemoteSegment {
    name: SegmentName,
    keys: [String; 4],
    size: usize,
    lifetime: Lifetime,
    timeout: Duration,
    link: Link,
    /// For waits: a second connection, subscribed while waiting.
    events: Mutex<Option<redis::Connection>>,
    /// `host pid`, as the server records holders and writers.
    who: String,
    handle_id: String,
    /// The renewal of this handle's lease on an until-last-close segment.
    handle_lease: Option<Registration>,
    /// The process that opened it: a child made by fork() must not use its
    /// connections.
    pid: u32,
}

impl fmt::Debug for RemoteSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSegment")
            .field("name", &self.name)
            .field("location", &self.link.location)
            .field("size", &self.size)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

/// This machine's name, as holders and writers are recorded.
fn hostname() -> String {
    #[cfg(unix)]
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok();
    #[cfg(not(unix))]
    let name = std::env::var("COMPUTERNAME").ok();
    name.map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty() && !n.contains(' '))
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// A handle id no other handle has: host, pid, and a per-process count
/// mixed with the time.
fn new_handle_id(who: &str) -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("{} {n:x}.{nanos:x}", who)
}

/// This machine's clock, in ms since the epoch.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The keys of the segment `name` (see `scripts.rs`), in the order the
/// scripts take them.
fn keys_of(name: &SegmentName) -> [String; 4] {
    ["meta", "data", "lease", "handles"].map(|part| format!("shmbox:{{{}}}:{part}", name.as_str()))
}

/// Runs `script` on `keys` with `args`, over `link`.
fn invoke(
    link: &Link,
    name: &SegmentName,
    keys: &[String; 4],
    operation: &'static str,
    script: &redis::Script,
    args: &[Arg<'_>],
) -> Result<Reply> {
    let value = link.run(name.as_str(), operation, |c| {
        let mut call = script.prepare_invoke();
        for key in keys {
            call.key(key.as_str());
        }
        for arg in args {
            match arg {
                Arg::Bytes(bytes) => call.arg(*bytes),
                Arg::Number(n) => call.arg(*n),
            };
        }
        call.invoke::<Value>(c)
    })?;
    Ok(Reply::new(value))
}

/// Splits `host pid` as recorded.
fn host_and_pid(recorded: &str) -> (Option<String>, Option<u32>) {
    match recorded.rsplit_once(' ') {
        Some((host, pid)) => (Some(host.to_owned()), pid.parse().ok()),
        None if recorded.is_empty() => (None, None),
        None => (Some(recorded.to_owned()), None),
    }
}

impl RemoteSegment {
    pub(crate) fn open(
        location: &RedisLocation,
        name: &str,
        size: usize,
        lifetime: Lifetime,
        timeout: Duration,
        mode: Mode,
    ) -> Result<RemoteSegment> {
        let name = SegmentName::new(name)?;
        if mode != Mode::Open {
            if size == 0 {
                return Err(Error::InvalidSize {
                    size: 0,
                    reason: "a segment holds at least one byte",
                });
            }
            if size > MAX_SIZE {
                return Err(Error::InvalidSize {
                    size: size as u64,
                    reason: "a remote segment holds at most 512 MiB (the largest Redis string)",
                });
            }
        }
        let keys = keys_of(&name);
        let link = Link::new(location)?;
        let who = format!("{} {}", hostname(), std::process::id());
        let handle_id = new_handle_id(&who);
        let lease_ms = location.lease().as_millis() as u64;
        let lifetime_name = lifetime.to_string();
        let mode_name = match mode {
            Mode::Open => "open",
            Mode::Create => "create",
            Mode::OpenOrCreate => "open_or_create",
        };
        let reply = invoke(
            &link,
            &name,
            &keys,
            "opening",
            &scripts::OPEN,
            &[
                scripts::REMOTE_FORMAT.into(),
                size.into(),
                lifetime_name.as_str().into(),
                who.as_str().into(),
                handle_id.as_str().into(),
                lease_ms.into(),
                mode_name.into(),
            ],
        )?;
        let (found_size, found_life) = match reply.status() {
            "created" | "opened" => (reply.int(1) as usize, reply.text(2)),
            other => return Err(status_error(&name, location, other, &reply)),
        };
        let lifetime = if found_life == "persistent" {
            Lifetime::Persistent
        } else {
            Lifetime::UntilLastClose
        };
        let handle_lease = (lifetime == Lifetime::UntilLastClose).then(|| {
            renewer::register(
                location,
                &keys,
                Lease::Handle {
                    handle_id: handle_id.clone(),
                },
            )
        });
        let segment = RemoteSegment {
            name,
            keys,
            size: found_size,
            lifetime,
            timeout,
            link,
            events: Mutex::new(None),
            who,
            handle_id,
            handle_lease,
            pid: std::process::id(),
        };
        if mode == Mode::OpenOrCreate && size != found_size {
            return Err(Error::SizeMismatch {
                name: segment.name.to_string(),
                existing: found_size,
                requested: size,
            });
        }
        Ok(segment)
    }

    /// The segment's name.
    pub fn name(&self) -> &SegmentName {
        &self.name
    }

    /// Where it is kept.
    pub fn location(&self) -> &RedisLocation {
        &self.link.location
    }

    /// Its size in bytes, fixed at creation.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Its lifetime.
    pub fn lifetime(&self) -> Lifetime {
        self.lifetime
    }

    /// How long [`lock`](RemoteSegment::lock) and
    /// [`write`](RemoteSegment::write) wait for a busy lock.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn usable(&self) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::Forked {
                name: self.name.to_string(),
                opened_by: self.pid,
            });
        }
        Ok(())
    }

    fn clamp(&self, offset: usize, len: usize) -> Result<usize> {
        if offset > self.size {
            return Err(Error::OutOfRange {
                offset,
                size: self.size,
            });
        }
        Ok(len.min(self.size - offset))
    }

    /// Runs `script` with this segment's keys and `args`.
    fn call(
        &self,
        operation: &'static str,
        script: &redis::Script,
        args: &[Arg<'_>],
    ) -> Result<Reply> {
        self.usable()?;
        invoke(&self.link, &self.name, &self.keys, operation, script, args)
    }

    fn error(&self, reply: &Reply) -> Error {
        status_error(&self.name, &self.link.location, reply.status(), reply)
    }

    /// The number of writes committed so far. One round trip.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] if the server cannot be reached, or no longer has
    /// the segment.
    pub fn generation(&self) -> Result<u64> {
        self.usable()?;
        let generation: Option<u64> =
            self.link
                .run(self.name.as_str(), "reading the generation", |c| {
                    redis::cmd("HGET").arg(&self.keys[0]).arg("gen").query(c)
                })?;
        generation.ok_or_else(|| self.vanished())
    }

    fn vanished(&self) -> Error {
        Error::Remote {
            name: self.name.to_string(),
            location: self.link.location.to_string(),
            operation: "using",
            reason: "the server no longer has it (it was removed, or the server restarted \
                     without persistence)"
                .to_owned(),
        }
    }

    /// Writes `data` at `offset` under the lock, clamped to the size, and
    /// returns how many bytes were written. Uncontended, one round trip:
    /// one script checks the lock, writes, commits and notifies.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`], [`Error::Timeout`] if another holder keeps
    /// the lock for the timeout, [`Error::Remote`].
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<usize> {
        let n = self.clamp(offset, data.len())?;
        if n == 0 {
            return Ok(0);
        }
        let bytes = &data[..n];
        self.until_free(self.timeout, || {
            let reply = self.call(
                "writing",
                &scripts::WRITE,
                &[
                    offset.into(),
                    bytes.into(),
                    self.who.as_str().into(),
                    now_ms().into(),
                ],
            )?;
            match reply.status() {
                "ok" => Ok(Some(n)),
                "busy" => Ok(None),
                _ => Err(self.error(&reply)),
            }
        })
    }

    /// Reads up to `len` bytes from `offset`, waiting while another process
    /// holds the lock. One round trip when the lock is free.
    ///
    /// # Errors
    ///
    /// As for [`write`](RemoteSegment::write).
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.read_with(offset, len, "-", true).map(|s| s.data)
    }

    /// Reads up to `len` bytes from `offset` without the lock, with the
    /// generation they belong to: data and generation come from one atomic
    /// script, and writes land whole, so the copy is never torn. One round
    /// trip; it never waits.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`], [`Error::Remote`].
    pub fn read_consistent(&self, offset: usize, len: usize) -> Result<Snapshot> {
        self.read_with(offset, len, "", false)
    }

    fn read_with(&self, offset: usize, len: usize, token: &str, wait: bool) -> Result<Snapshot> {
        let n = self.clamp(offset, len)?;
        let attempt = || {
            let reply = self.call(
                "reading",
                &scripts::READ,
                &[offset.into(), n.into(), token.into()],
            )?;
            match reply.status() {
                "ok" => Ok(Some(Snapshot {
                    data: reply.bytes(2).to_vec(),
                    generation: reply.int(1) as u64,
                })),
                "busy" if wait => Ok(None),
                _ => Err(self.error(&reply)),
            }
        };
        self.until_free(self.timeout, attempt)
    }

    /// Runs `attempt` until it returns something: at once, and then each
    /// time the segment's channel says the lock was released, or a fifth of
    /// a lease has passed (a dead holder's lease runs out silently), until
    /// `timeout`. Subscribed before each retry, so no release is missed.
    fn until_free<T>(
        &self,
        timeout: Duration,
        mut attempt: impl FnMut() -> Result<Option<T>>,
    ) -> Result<T> {
        if let Some(value) = attempt()? {
            return Ok(value);
        }
        if timeout.is_zero() {
            return Err(self.timed_out(WaitFor::Lock, timeout));
        }
        let deadline = Instant::now().checked_add(timeout);
        let hint = (self.link.location.lease() / 5).max(Duration::from_millis(10));
        self.wait_on_channel(deadline, Some(hint), "waiting for the lock", attempt)?
            .ok_or_else(|| self.timed_out(WaitFor::Lock, timeout))
    }

    /// Takes the lock, waiting up to [`timeout`](RemoteSegment::timeout).
    ///
    /// The lock is a lease: a thread of this process renews it while the
    /// guard lives. If its holder dies, the lease runs out and the next
    /// locker takes it over, with [`RemoteGuard::owner_died`] saying so.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`], [`Error::Remote`].
    pub fn lock(&self) -> Result<RemoteGuard<'_>> {
        self.lock_timeout(self.timeout)
    }

    /// Takes the lock, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As for [`lock`](RemoteSegment::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<RemoteGuard<'_>> {
        self.until_free(timeout, || self.try_lock_once())
    }

    /// Takes the lock if it is free, or its holder's lease ran out; `None`
    /// if a live holder has it.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn try_lock(&self) -> Result<Option<RemoteGuard<'_>>> {
        self.try_lock_once()
    }

    fn try_lock_once(&self) -> Result<Option<RemoteGuard<'_>>> {
        let lease_ms = self.link.location.lease().as_millis() as u64;
        let reply = self.call(
            "locking",
            &scripts::LOCK,
            &[self.who.as_str().into(), lease_ms.into()],
        )?;
        match reply.status() {
            "ok" => {
                let token = reply.int(1) as u64;
                let died = reply.text(2);
                let owner_died = (!died.is_empty()).then(|| {
                    let (host, pid) = host_and_pid(&died);
                    (
                        OwnerDied {
                            pid,
                            mid_write: reply.text(3) == "1",
                        },
                        host,
                    )
                });
                let lease =
                    renewer::register(&self.link.location, &self.keys, Lease::Lock { token });
                Ok(Some(RemoteGuard {
                    segment: self,
                    token,
                    lease: Some(lease),
                    pending: Vec::new(),
                    began: false,
                    commit: false,
                    owner_died,
                }))
            }
            "busy" => Ok(None),
            _ => Err(self.error(&reply)),
        }
    }

    fn timed_out(&self, waiting_for: WaitFor, timeout: Duration) -> Error {
        Error::Timeout {
            name: self.name.to_string(),
            waiting_for,
            timeout,
        }
    }

    fn events(&self) -> MutexGuard<'_, Option<redis::Connection>> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps until the segment's channel says something (a commit or an
    /// unlock), the lease of `lease_ms` may have run out, or `deadline`.
    /// Subscribes first, then re-checks with `check`, so that nothing
    /// published in between is missed. Returns early with the value `check`
    /// returns, if any.
    fn wait_on_channel<T>(
        &self,
        deadline: Option<Instant>,
        hint: Option<Duration>,
        operation: &'static str,
        mut check: impl FnMut() -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        let channel = format!("shmbox:{{{}}}:events", self.name.as_str());
        // Taken out of its slot for the wait, so that waits in other threads
        // do not queue behind this one: they connect for themselves.
        let cached = self.events().take();
        let mut connection = match cached {
            Some(connection) => connection,
            None => self.link.connect().map_err(|e| {
                remote_error(&self.link.location, self.name.as_str(), operation, &e)
            })?,
        };
        let result = (|| {
            let mut pubsub = connection.as_pubsub();
            pubsub.subscribe(&channel)?;
            loop {
                if let Some(value) = check().map_err(Failure::Shmbox)? {
                    return Ok(Some(value));
                }
                let now = Instant::now();
                let mut slice = Duration::from_secs(1);
                if let Some(hint) = hint {
                    slice = slice.min(hint);
                }
                if let Some(deadline) = deadline {
                    if now >= deadline {
                        return Ok(None);
                    }
                    slice = slice.min(deadline - now);
                }
                pubsub.set_read_timeout(Some(slice.max(Duration::from_millis(1))))?;
                match pubsub.get_message() {
                    Ok(_) => {}
                    Err(e) if e.is_timeout() => {}
                    Err(e) => return Err(Failure::Redis(e)),
                }
            }
        })();
        let failure = match result {
            Ok(value) => {
                // Leaving pub/sub mode (when `pubsub` dropped) worked: keep
                // the connection for the next wait.
                let mut slot = self.events();
                if slot.is_none() && redis::ConnectionLike::is_open(&connection) {
                    *slot = Some(connection);
                }
                return Ok(value);
            }
            Err(failure) => failure,
        };
        match failure {
            Failure::Shmbox(e) => Err(e),
            Failure::Redis(e) => Err(remote_error(
                &self.link.location,
                self.name.as_str(),
                operation,
                &e,
            )),
        }
    }

    /// Waits until a write is committed after generation `since`, and
    /// returns the new generation; at once if it is already other than
    /// `since`. Sleeps on the server's pub/sub channel: subscribed first,
    /// then the generation checked, so no commit is missed.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`], [`Error::Remote`].
    pub fn wait_for_change(&self, since: u64, timeout: Duration) -> Result<u64> {
        let deadline = Instant::now().checked_add(timeout);
        let now = self.generation()?;
        if now != since {
            return Ok(now);
        }
        if timeout.is_zero() {
            return Err(self.timed_out(WaitFor::Change, timeout));
        }
        let changed = self.wait_on_channel(deadline, None, "waiting for a change", || {
            let now = self.generation()?;
            Ok((now != since).then_some(now))
        })?;
        changed.ok_or_else(|| self.timed_out(WaitFor::Change, timeout))
    }

    /// The segment's metadata, as [`info`](crate::info) gives it.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn info(&self) -> Result<SegmentInfo> {
        self.usable()?;
        info_of(&self.link, &self.name).and_then(|info| info.ok_or_else(|| self.vanished()))
    }
}

impl Drop for RemoteSegment {
    fn drop(&mut self) {
        self.handle_lease.take();
        if std::process::id() != self.pid || self.lifetime != Lifetime::UntilLastClose {
            return;
        }
        // The last handle removes an until-last-close segment. If the server
        // cannot be told, the handle's lease runs out instead.
        let _ = self.call(
            "closing",
            &scripts::CLOSE,
            &[self.handle_id.as_str().into()],
        );
    }
}

/// An argument of a script.
#[derive(Clone, Copy)]
enum Arg<'a> {
    Bytes(&'a [u8]),
    Number(u64),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Arg<'a> {
        Arg::Bytes(s.as_bytes())
    }
}

impl<'a> From<&'a [u8]> for Arg<'a> {
    fn from(b: &'a [u8]) -> Arg<'a> {
        Arg::Bytes(b)
    }
}

impl From<usize> for Arg<'_> {
    fn from(n: usize) -> Arg<'static> {
        Arg::Number(n as u64)
    }
}

impl From<u64> for Arg<'_> {
    fn from(n: u64) -> Arg<'static> {
        Arg::Number(n)
    }
}

enum Failure {
    Shmbox(Error),
    Redis(redis::RedisError),
}

impl From<redis::RedisError> for Failure {
    fn from(e: redis::RedisError) -> Failure {
        Failure::Redis(e)
    }
}

/// The error for a script's status other than success.
fn status_error(
    name: &SegmentName,
    location: &RedisLocation,
    status: &str,
    reply: &Reply,
) -> Error {
    let name = name.to_string();
    match status {
        "notfound" => Error::NotFound { name },
        "exists" => Error::AlreadyExists { name },
        "lost" => Error::LeaseLost {
            name,
            location: location.to_string(),
        },
        "version" => Error::IncompatibleVersion {
            name,
            found: reply.text(1).parse().unwrap_or(0),
            supported: scripts::REMOTE_FORMAT.parse().unwrap_or(0),
        },
        "corrupt" => Error::Corrupt {
            name,
            reason: format!("{} (at {location})", reply.text(1)),
        },
        "busy" => Error::Busy {
            name,
            reason: "another process has it open; an until-last-close segment is removed \
                     when the last process closes it",
        },
        other => Error::Remote {
            name,
            location: location.to_string(),
            operation: "reading the server's reply",
            reason: format!(
                "unexpected reply {other:?} (is this a shmbox server of another version?)"
            ),
        },
    }
}

/// The segment `name`'s info, or `None` if it is not there (or was dead,
/// and is now removed).
fn info_of(link: &Link, name: &SegmentName) -> Result<Option<SegmentInfo>> {
    let reply = invoke(
        link,
        name,
        &keys_of(name),
        "describing",
        &scripts::INFO,
        &[scripts::REMOTE_FORMAT.into()],
    )?;
    match reply.status() {
        "ok" => {}
        "notfound" => return Ok(None),
        other => return Err(status_error(name, &link.location, other, &reply)),
    }
    let mut fields = std::collections::HashMap::new();
    if let Some(Value::Array(items)) = reply.value(1) {
        for pair in items.chunks(2) {
            if let [key, value] = pair {
                if let (Some(k), Some(v)) = (as_str(key), as_str(value)) {
                    fields.insert(k.to_owned(), v.to_owned());
                }
            }
        }
    }
    let field = |k: &str| fields.get(k).map(String::as_str).unwrap_or("");
    let number = |k: &str| field(k).parse::<u64>().unwrap_or(0);
    let lease_ms = reply.int(2);
    let (holder_host, holder_pid) = host_and_pid(field("holder"));
    let (writer_host, writer_pid) = host_and_pid(field("last_writer"));
    let (creator_host, creator_pid) = host_and_pid(field("creator"));
    let held = !field("holder_token").is_empty();
    let lock = match (held, lease_ms > 0) {
        (false, _) => LockState::Free,
        (true, true) => LockState::Held { pid: holder_pid },
        (true, false) => LockState::Abandoned { pid: holder_pid },
    };
    let time = |ms: u64| (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms));
    Ok(Some(SegmentInfo {
        name: name.clone(),
        size: number("size") as usize,
        format_version: number("v") as u32,
        lifetime: if field("life") == "persistent" {
            Lifetime::Persistent
        } else {
            Lifetime::UntilLastClose
        },
        generation: number("gen"),
        // Writes land whole when the lock is released: never torn.
        consistent: true,
        writing: held && lease_ms > 0 && field("writing") == "1",
        lock,
        last_writer_pid: writer_pid,
        last_write: time(number("last_write_ms")),
        creator_pid,
        created: time(number("created_ms")),
        owner_deaths: number("deaths") as u32,
        owner_uid: None,
        mode: None,
        remote: Some(crate::info::RemoteDetails {
            location: link.location.to_string(),
            lock_holder_host: if held { holder_host } else { None },
            last_writer_host: writer_host,
            creator_host,
            open_handles: reply.int(3).max(0) as u64,
        }),
    }))
}

/// [`info`](crate::info) for a remote location.
pub(crate) fn info(location: &RedisLocation, name: &str) -> Result<SegmentInfo> {
    let name = SegmentName::new(name)?;
    let link = Link::new(location)?;
    info_of(&link, &name)?.ok_or(Error::NotFound {
        name: name.to_string(),
    })
}

/// [`list`](crate::list) for a remote location: every segment on the
/// server (one database), dead ones removed on the way.
pub(crate) fn list(location: &RedisLocation) -> Result<Vec<SegmentInfo>> {
    let link = Link::new(location)?;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = link.run("", "listing", |c| {
            redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("shmbox:{*}:meta")
                .arg("COUNT")
                .arg(1000)
                .query(c)
        })?;
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let mut names: Vec<SegmentName> = keys
        .iter()
        .filter_map(|k| std::str::from_utf8(k).ok())
        .filter_map(|k| k.strip_prefix("shmbox:{")?.strip_suffix("}:meta"))
        .filter_map(|n| SegmentName::new(n).ok())
        .collect();
    names.sort();
    names.dedup();
    let mut infos = Vec::new();
    for name in names {
        match info_of(&link, &name) {
            Ok(Some(info)) => infos.push(info),
            // Removed meanwhile, or not a segment we can read: skip it.
            Ok(None) | Err(Error::Corrupt { .. } | Error::IncompatibleVersion { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(infos)
}

/// [`remove`](crate::remove) for a remote location.
pub(crate) fn remove(location: &RedisLocation, name: &str) -> Result<()> {
    let name = SegmentName::new(name)?;
    let link = Link::new(location)?;
    let reply = invoke(
        &link,
        &name,
        &keys_of(&name),
        "removing",
        &scripts::REMOVE,
        &[],
    )?;
    match reply.status() {
        "ok" => Ok(()),
        other => Err(status_error(&name, location, other, &reply)),
    }
}

/// The lock of a [`RemoteSegment`], held until dropped or
/// [`unlock`](RemoteGuard::unlock)ed.
///
/// Writes made through it are kept here and land together, atomically,
/// when it is released, and only if its lease still holds: the release
/// checks its fencing token on the server. A holder that was paused or cut
/// off past its lease gets [`Error::LeaseLost`], and none of its writes
/// land. The first write also tells the server a write began, so that a
/// holder that dies then is reported as dying mid-write (its writes never
/// landed, so the data stays consistent).
pub struct RemoteGuard<'a> {
    segment: &'a RemoteSegment,
    token: u64,
    lease: Option<Registration>,
    pending: Vec<(usize, Vec<u8>)>,
    began: bool,
    commit: bool,
    owner_died: Option<(OwnerDied, Option<String>)>,
}

impl fmt::Debug for RemoteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteGuard")
            .field("segment", &self.segment.name)
            .field("token", &self.token)
            .field("pending_writes", &self.pending.len())
            .finish()
    }
}

impl RemoteGuard<'_> {
    /// `Some` if the previous holder's lease ran out while it held the lock
    /// (it died, or was cut off): this guard took it over.
    pub fn owner_died(&self) -> Option<OwnerDied> {
        self.owner_died.as_ref().map(|(died, _)| *died)
    }

    /// The host of the holder that died, as it recorded itself.
    pub fn owner_died_host(&self) -> Option<&str> {
        self.owner_died
            .as_ref()
            .and_then(|(_, host)| host.as_deref())
    }

    /// Always true: remote writes land whole, so a dead writer never leaves
    /// torn data behind.
    pub fn is_consistent(&self) -> bool {
        true
    }

    /// Commits a new generation on release, even with nothing written.
    pub fn mark_consistent(&mut self) {
        self.commit = true;
    }

    fn check_lease(&self) -> Result<()> {
        if self.lease.as_ref().is_some_and(Registration::is_lost) {
            return Err(Error::LeaseLost {
                name: self.segment.name.to_string(),
                location: self.segment.link.location.to_string(),
            });
        }
        Ok(())
    }

    /// Writes `data` at `offset`, clamped to the size; it lands when the
    /// guard is released. The first write of a guard costs a round trip
    /// (the server checks the lease and records that a write began); the
    /// others none.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`], [`Error::LeaseLost`], [`Error::Remote`].
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<usize> {
        let n = self.segment.clamp(offset, data.len())?;
        self.check_lease()?;
        if n == 0 {
            return Ok(0);
        }
        if !self.began {
            let reply =
                self.segment
                    .call("writing", &scripts::BEGIN_WRITE, &[self.token.into()])?;
            if reply.status() != "ok" {
                return Err(self.segment.error(&reply));
            }
            self.began = true;
        }
        self.pending.push((offset, data[..n].to_vec()));
        Ok(n)
    }

    /// Reads into `buf` from `offset`: the server's bytes, with this
    /// guard's own writes over them. Returns how many bytes were read.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfRange`], [`Error::LeaseLost`], [`Error::Remote`].
    pub fn read_into(&self, offset: usize, buf: &mut [u8]) -> Result<usize> {
        let n = self.segment.clamp(offset, buf.len())?;
        self.check_lease()?;
        let token = self.token.to_string();
        let reply = self.segment.call(
            "reading",
            &scripts::READ,
            &[offset.into(), n.into(), token.as_str().into()],
        )?;
        match reply.status() {
            "ok" => {}
            "busy" => {
                return Err(Error::LeaseLost {
                    name: self.segment.name.to_string(),
                    location: self.segment.link.location.to_string(),
                });
            }
            _ => return Err(self.segment.error(&reply)),
        }
        let got = reply.bytes(2);
        buf[..got.len().min(n)].copy_from_slice(&got[..got.len().min(n)]);
        for (at, bytes) in &self.pending {
            let start = (*at).max(offset);
            let end = (at + bytes.len()).min(offset + n);
            if start < end {
                buf[start - offset..end - offset].copy_from_slice(&bytes[start - at..end - at]);
            }
        }
        Ok(n)
    }

    /// Releases the lock, landing this guard's writes as one new
    /// generation, and returns the generation.
    ///
    /// # Errors
    ///
    /// [`Error::LeaseLost`] (nothing landed), [`Error::Remote`].
    pub fn unlock(mut self) -> Result<u64> {
        self.release()
    }

    fn release(&mut self) -> Result<u64> {
        let lease = self.lease.take();
        let mut pending = std::mem::take(&mut self.pending);
        if std::thread::panicking() {
            // A panic interrupted the writes: none of them land.
            pending.clear();
            self.commit = false;
        }
        let commit = if self.commit { "1" } else { "0" };
        let mut args: Vec<Arg<'_>> = vec![
            self.token.into(),
            self.segment.who.as_str().into(),
            commit.into(),
        ];
        for (offset, bytes) in &pending {
            args.push((*offset).into());
            args.push(bytes.as_slice().into());
        }
        let reply = self.segment.call("unlocking", &scripts::UNLOCK, &args);
        drop(lease);
        let reply = reply?;
        match reply.status() {
            "ok" => Ok(reply.int(1) as u64),
            _ => Err(self.segment.error(&reply)),
        }
    }
}

impl Drop for RemoteGuard<'_> {
    fn drop(&mut self) {
        if self.lease.is_some() && std::process::id() == self.segment.pid {
            // Nobody to tell of a failure: the lease runs out instead.
            let _ = self.release();
        }
    }
}
