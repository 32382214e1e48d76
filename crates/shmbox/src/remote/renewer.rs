//! The one background thread of the remote backend: it renews the leases
//! of the locks this process holds and of its open until-last-close
//! handles, each a third of its lease before it would run out.
//!
//! It starts with the first lease to renew and ends a few seconds
//! (`IDLE`) after the last, so a process that uses only local segments, or
//! has closed its remote ones, has no such thread. It has its own
//! connections, one per server.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::conn::{Link, Reply};
use super::scripts;
use crate::RedisLocation;
use crate::sync::{AtomicU32, Ordering};

/// What a lease is for.
#[derive(Clone)]
pub(crate) enum Lease {
    /// An open handle's hold on an until-last-close segment.
    Handle { handle_id: String },
    /// A held lock.
    Lock { token: u64 },
}

/// How long the thread waits for more work before it ends.
const IDLE: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Entry {
    id: u64,
    location: RedisLocation,
    keys: [String; 4],
    lease: Lease,
    /// Set (to 1) when the server says the lease is gone.
    lost: Arc<AtomicU32>,
    due: Instant,
}

#[derive(Default)]
struct State {
    entries: Vec<Entry>,
    next_id: u64,
    running: bool,
}

struct Renewer {
    state: Mutex<State>,
    changed: Condvar,
}

fn renewer() -> &'static Renewer {
    static RENEWER: OnceLock<Renewer> = OnceLock::new();
    RENEWER.get_or_init(|| Renewer {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
    })
}

fn state() -> MutexGuard<'static, State> {
    renewer()
        .state
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A lease being renewed; dropping it stops the renewal.
pub(crate) struct Registration {
    id: u64,
    lost: Arc<AtomicU32>,
}

impl Registration {
    /// Whether the server said the lease was gone.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Acquire) != 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The thread finds out when it next wakes; no need to wake it now.
        state().entries.retain(|e| e.id != self.id);
    }
}

/// Starts renewing `lease` on the segment whose keys are `keys`.
pub(crate) fn register(location: &RedisLocation, keys: &[String; 4], lease: Lease) -> Registration {
    let lost = Arc::new(AtomicU32::new(0));
    let mut state = state();
    state.next_id += 1;
    let id = state.next_id;
    let due = Instant::now() + location.lease() / 3;
    // The thread sleeps until the earliest renewal due: it needs waking
    // only if this one comes sooner (or it idles with nothing to do).
    let wake = state.entries.iter().all(|e| e.due > due);
    state.entries.push(Entry {
        id,
        location: location.clone(),
        keys: keys.clone(),
        lease,
        lost: Arc::clone(&lost),
        due,
    });
    if !state.running {
        state.running = true;
        let spawned = std::thread::Builder::new()
            .name("shmbox-lease".to_owned())
            .spawn(run);
        if spawned.is_err() {
            // No thread: the lease runs out unrenewed, and its holder finds
            // out (LeaseLost) at its next call.
            state.running = false;
        }
    }
    drop(state);
    if wake {
        renewer().changed.notify_all();
    }
    Registration { id, lost }
}

fn run() {
    let mut links: HashMap<String, Link> = HashMap::new();
    let mut state = state();
    loop {
        if state.entries.is_empty() {
            // Lingers a little, so that a loop of lock and unlock does not
            // start a thread each time; then ends.
            state = renewer()
                .changed
                .wait_timeout_while(state, IDLE, |s| s.entries.is_empty())
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            if state.entries.is_empty() {
                state.running = false;
                return;
            }
        }
        let now = Instant::now();
        let next = state.entries.iter().map(|e| e.due).min().unwrap_or(now);
        if next > now {
            state = renewer()
                .changed
                .wait_timeout(state, next - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            continue;
        }
        let due: Vec<Entry> = state
            .entries
            .iter()
            .filter(|e| e.due <= now)
            .cloned()
            .collect();
        for entry in state.entries.iter_mut().filter(|e| e.due <= now) {
            entry.due = now + entry.location.lease() / 3;
        }
        drop(state);
        for entry in &due {
            renew(&mut links, entry);
        }
        state = self::state();
    }
}

fn renew(links: &mut HashMap<String, Link>, entry: &Entry) {
    let link = match links.entry(entry.location.url().to_owned()) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => match Link::new(&entry.location) {
            Ok(link) => v.insert(link),
            Err(_) => return,
        },
    };
    let lease_ms = entry.location.lease().as_millis() as u64;
    let reply = link.run("", "renewing a lease", |c| {
        let mut call = match &entry.lease {
            Lease::Handle { handle_id } => {
                let mut call = scripts::RENEW_HANDLE.prepare_invoke();
                call.arg(handle_id.as_str()).arg(lease_ms);
                call
            }
            Lease::Lock { token } => {
                let mut call = scripts::RENEW_LOCK.prepare_invoke();
                call.arg(*token).arg(lease_ms);
                call
            }
        };
        for key in &entry.keys {
            call.key(key.as_str());
        }
        call.invoke::<redis::Value>(c)
    });
    // A failed call changes nothing: the lease may still be valid, and the
    // next renewal, or the holder's own next call, finds out.
    if let Ok(value) = reply {
        let status = Reply::new(value);
        if matches!(status.status(), "lost" | "notfound") {
            entry.lost.store(1, Ordering::Release);
        }
    }
}
