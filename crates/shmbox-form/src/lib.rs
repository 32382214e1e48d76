//! The FoxPro sample's form as logic: an edit box's text, and the "Read from
//! shared memory" and "Write to shared memory" buttons, over a segment, plus
//! what shmbox adds (live following, a status line, plain-words errors). No
//! UI here: the terminal demo (`shmbox-tui`) and the desktop window
//! (`shmbox-gui`) own their edit boxes and pass the text in; a [`Load`]
//! tells them when to replace it.
//!
//! [`watch_changes`] sleeps in the segment's change notification on a
//! thread of its own and reports each commit; it wakes only to see whether
//! it should stop (every tenth of a second), never to look for changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use shmbox::{AnyGuard, AnySegment, Error, Lifetime, Location, SegmentOptions, WaitFor};

/// The sample's segment name.
pub const DEFAULT_NAME: &str = "MYAPPSHAREDMEMORY";
/// The sample's segment size.
pub const DEFAULT_SIZE: usize = 1024;

/// Opens the demo's segment on this machine, as the sample does: open it,
/// or create it. It lives until the last process using it closes it, as on
/// Windows. Without an explicit `size`, an existing segment is used at its
/// own size.
pub fn open(name: &str, size: Option<usize>) -> shmbox::Result<AnySegment> {
    open_at(&Location::Local, name, size)
}

/// [`open`] at `location`: this machine, or a Redis server shared by
/// several machines.
pub fn open_at(location: &Location, name: &str, size: Option<usize>) -> shmbox::Result<AnySegment> {
    let options = SegmentOptions::new().lifetime(Lifetime::UntilLastClose);
    match size {
        Some(size) => options.open_or_create_at(location, name, size),
        None => match options.open_or_create_at(location, name, DEFAULT_SIZE) {
            Err(Error::SizeMismatch { .. }) => options.open_at(location, name),
            other => other,
        },
    }
}

/// Sleeps in the segment's change notification on a thread of its own, and
/// calls `report` with each new generation, or with the error that stopped
/// it. Stops when `report` returns `false`, or when the returned [`Watcher`]
/// is dropped.
pub fn watch_changes(
    segment: Arc<AnySegment>,
    mut report: impl FnMut(shmbox::Result<u64>) -> bool + Send + 'static,
) -> Watcher {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    // A remote wait costs round trips: look for the stop signal less often.
    let slice = if segment.location().is_local() {
        WATCH_SLICE
    } else {
        REMOTE_WATCH_SLICE
    };
    let thread = std::thread::spawn(move || {
        let mut seen = match segment.generation() {
            Ok(generation) => generation,
            Err(e) => {
                report(Err(e));
                return;
            }
        };
        while !stopped.load(Ordering::Relaxed) {
            match segment.wait_for_change(seen, slice) {
                Ok(generation) => {
                    seen = generation;
                    if !report(Ok(generation)) {
                        return;
                    }
                }
                Err(Error::Timeout { .. }) => {}
                Err(e) => {
                    report(Err(e));
                    return;
                }
            }
        }
    });
    Watcher {
        stop,
        thread: Some(thread),
    }
}

/// How long the watcher sleeps before it looks whether it should stop.
const WATCH_SLICE: Duration = Duration::from_millis(100);
/// The same, for a segment on a server.
const REMOTE_WATCH_SLICE: Duration = Duration::from_millis(300);

/// The thread of [`watch_changes`]. Dropping it stops the thread and waits
/// for it (up to a tenth of a second), so that the thread's handle on the
/// segment is closed before the demo exits: a segment still open at exit is
/// never closed, and an until-last-close segment then outlives its last
/// user until the next shmbox call reclaims it.
#[derive(Debug)]
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the user must answer before anything else happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirm {
    /// Read would replace unsaved edits.
    DiscardAndRead,
}

/// How a message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Info,
    Warning,
    Error,
}

/// A line of news for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub kind: Kind,
    pub text: String,
}

/// What the UI must do after an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Draw, and wait for the next event.
    Continue,
    /// Draw (the status says we wait for the lock), then call
    /// [`Form::finish_pending`], which blocks until the lock comes or times
    /// out.
    WaitForLock,
    /// Leave.
    Quit,
}

/// What the UI must do with its edit box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Load {
    /// Leave it alone.
    Keep,
    /// Replace its text, cursor at the end (after a Read).
    Replace(String),
    /// Replace its text, keeping the cursor where it was (following live).
    Follow(String),
}

/// What the form knows of the segment, refreshed when a writer commits.
#[derive(Debug, Clone, Default)]
pub struct SegmentView {
    /// Bytes up to the last non-zero byte.
    pub in_use: usize,
    /// The last committed write's process and time.
    pub last_write: Option<(u32, SystemTime)>,
    /// The host of the last write, for a segment on a server.
    pub last_write_host: Option<String>,
    /// The generation at the last refresh.
    pub generation: u64,
    /// The segment's content at the last refresh, and its generation.
    latest: Option<(String, u64)>,
}

/// The form's state: what was last read or written, live mode, the question
/// being asked, and the latest news.
pub struct Form {
    segment: Arc<AnySegment>,
    /// The text as last read from or written to the segment.
    baseline: String,
    /// The generation of what the edit box was last loaded from or saved as.
    shown_generation: u64,
    live: bool,
    confirm: Option<Confirm>,
    message: Option<Message>,
    view: SegmentView,
    pending_write: bool,
}

impl std::fmt::Debug for Form {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Form")
            .field("segment", &self.segment.name())
            .field("shown_generation", &self.shown_generation)
            .field("live", &self.live)
            .field("confirm", &self.confirm)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl Form {
    /// A form on `segment`, with an empty edit box, as the sample starts.
    pub fn new(segment: Arc<AnySegment>) -> Form {
        let mut form = Form {
            segment,
            baseline: String::new(),
            shown_generation: 0,
            live: false,
            confirm: None,
            message: None,
            view: SegmentView::default(),
            pending_write: false,
        };
        form.refresh_view();
        form.say(
            Kind::Info,
            "Type some text, then Write it; start another demo and Read it there.",
        );
        form
    }

    pub fn segment(&self) -> &Arc<AnySegment> {
        &self.segment
    }

    /// The segment's current generation (for a remote segment that cannot
    /// be reached, the last one this form saw).
    pub fn generation(&self) -> u64 {
        self.segment
            .generation()
            .unwrap_or(self.shown_generation.max(self.view.generation))
    }

    /// Whether `text` (the edit box) differs from what was last read or
    /// written.
    pub fn is_dirty(&self, text: &str) -> bool {
        text != self.baseline
    }

    /// Whether a process committed a write that this form has not loaded
    /// (or made) since.
    pub fn others_wrote(&self) -> bool {
        self.generation() > self.shown_generation
    }

    pub fn live(&self) -> bool {
        self.live
    }

    pub fn confirm(&self) -> Option<Confirm> {
        self.confirm
    }

    pub fn message(&self) -> Option<&Message> {
        self.message.as_ref()
    }

    pub fn view(&self) -> &SegmentView {
        &self.view
    }

    /// Sets the news line.
    pub fn say(&mut self, kind: Kind, text: impl Into<String>) {
        self.message = Some(Message {
            kind,
            text: text.into(),
        });
    }

    /// Answers the question being asked.
    pub fn answer(&mut self, yes: bool) -> Load {
        match self.confirm.take() {
            Some(Confirm::DiscardAndRead) if yes => self.load_from_segment(),
            Some(Confirm::DiscardAndRead) => {
                self.say(Kind::Info, "Kept your edits; nothing was read.");
                Load::Keep
            }
            None => Load::Keep,
        }
    }

    /// "Read from shared memory": asks first if that would lose the edits in
    /// `text`.
    pub fn read(&mut self, text: &str) -> Load {
        if self.is_dirty(text) {
            self.confirm = Some(Confirm::DiscardAndRead);
            Load::Keep
        } else {
            self.load_from_segment()
        }
    }

    fn load_from_segment(&mut self) -> Load {
        match self.segment.read_consistent(0, self.segment.size()) {
            Ok(snapshot) => {
                let (text, replaced) = decode(&snapshot.data);
                let mut news = format!(
                    "Read {} bytes (generation {}).",
                    text.len(),
                    snapshot.generation
                );
                if replaced {
                    news.push_str(" Bytes that are not text are shown as \u{fffd}.");
                }
                self.say(Kind::Info, news);
                self.baseline.clone_from(&text);
                self.shown_generation = snapshot.generation;
                Load::Replace(text)
            }
            Err(e) => {
                self.say(Kind::Error, plain(&e));
                Load::Keep
            }
        }
    }

    /// "Write to shared memory": `text`, padded with zero bytes to the
    /// segment's size. Returns [`Step::WaitForLock`] if the lock is busy.
    pub fn write(&mut self, text: &str) -> Step {
        let segment = Arc::clone(&self.segment);
        match segment.try_lock() {
            Ok(Some(guard)) => {
                self.write_with(guard, text, None);
                Step::Continue
            }
            Ok(None) => {
                let info = segment.info().ok();
                let host = info
                    .as_ref()
                    .and_then(|i| i.remote.as_ref())
                    .and_then(|r| r.lock_holder_host.as_ref())
                    .map_or(String::new(), |h| format!(" on {h}"));
                let holder = info
                    .and_then(|i| i.lock_owner_pid())
                    .map_or(String::from("another process"), |pid| {
                        format!("pid {pid}{host}")
                    });
                self.say(
                    Kind::Warning,
                    format!(
                        "Waiting for the lock: {holder} holds it (up to {} s)...",
                        segment.timeout().as_secs()
                    ),
                );
                self.pending_write = true;
                Step::WaitForLock
            }
            Err(e) => {
                self.say(Kind::Error, plain(&e));
                Step::Continue
            }
        }
    }

    /// Finishes a write of `text` that waited for the lock.
    pub fn finish_pending(&mut self, text: &str) {
        if !std::mem::take(&mut self.pending_write) {
            return;
        }
        let segment = Arc::clone(&self.segment);
        let asked = Instant::now();
        match segment.lock() {
            Ok(guard) => self.write_with(guard, text, Some(asked.elapsed())),
            Err(e @ Error::Timeout { .. }) => {
                self.say(Kind::Error, format!("{} Nothing was written.", plain(&e)))
            }
            Err(e) => self.say(Kind::Error, plain(&e)),
        }
    }

    fn write_with(&mut self, mut guard: AnyGuard<'_>, text: &str, waited: Option<Duration>) {
        let size = self.segment.size();
        let kept = fit(text, size);
        let mut bytes = vec![0u8; size];
        bytes[..kept.len()].copy_from_slice(kept.as_bytes());
        let died = guard.owner_died();
        let died_host = guard.owner_died_host().map(str::to_owned);
        if let Err(e) = guard.write(0, &bytes) {
            self.say(Kind::Error, plain(&e));
            return;
        }
        let generation = match guard.unlock() {
            Ok(generation) => generation,
            Err(e) => {
                self.say(Kind::Error, plain(&e));
                return;
            }
        };
        kept.clone_into(&mut self.baseline);
        self.shown_generation = generation;
        self.refresh_view();

        let mut news = format!(
            "Wrote {} bytes and {} zero bytes of padding (generation {generation}).",
            kept.len(),
            size - kept.len()
        );
        let mut kind = Kind::Info;
        if kept.len() < text.len() {
            kind = Kind::Warning;
            news = format!(
                "The text is {} bytes but the segment holds {size}: the last {} bytes ({} characters) were cut off. {news}",
                text.len(),
                text.len() - kept.len(),
                text[kept.len()..].chars().count()
            );
        }
        if let Some(waited) = waited {
            news.push_str(&format!(
                " Waited {:.1} s for the lock.",
                waited.as_secs_f64()
            ));
        }
        if let Some(died) = died {
            let pid = died.pid.map_or(String::from("?"), |p| p.to_string());
            let host = died_host.map_or(String::new(), |h| format!(" on {h}"));
            news.push_str(&format!(
                " Took the lock over from pid {pid}{host}, which had died holding it."
            ));
        }
        self.say(kind, news);
    }

    /// Turns live mode on or off. On, the edit box follows other processes'
    /// writes, unless it holds unsaved edits (`text` differs from what was
    /// last read or written).
    pub fn toggle_live(&mut self, text: &str) -> Load {
        self.live = !self.live;
        if !self.live {
            self.say(Kind::Info, "Live off: Read to load what others write.");
            return Load::Keep;
        }
        self.say(
            Kind::Info,
            "Live on: the text follows other processes' writes.",
        );
        if self.others_wrote() {
            self.refresh_view();
            return self.follow(text);
        }
        Load::Keep
    }

    /// A writer committed generation `generation` (reported by
    /// [`watch_changes`]).
    pub fn on_change(&mut self, generation: u64, text: &str) -> Load {
        self.refresh_view();
        if self.live && generation > self.shown_generation {
            return self.follow(text);
        }
        Load::Keep
    }

    /// Loads the latest content in live mode, unless that would lose edits.
    fn follow(&mut self, text: &str) -> Load {
        let Some((latest, generation)) = self.view.latest.clone() else {
            return Load::Keep;
        };
        if generation <= self.shown_generation {
            return Load::Keep;
        }
        let writer = self
            .view
            .last_write
            .map_or(String::from("another process"), |(pid, _)| {
                match &self.view.last_write_host {
                    Some(host) => format!("pid {pid} on {host}"),
                    None => format!("pid {pid}"),
                }
            });
        if self.is_dirty(text) {
            self.say(
                Kind::Warning,
                format!(
                    "{writer} wrote generation {generation}; your unsaved edits are kept (Read loads theirs)."
                ),
            );
            Load::Keep
        } else {
            self.baseline.clone_from(&latest);
            self.shown_generation = generation;
            self.say(
                Kind::Info,
                format!("Live: loaded generation {generation} from {writer}."),
            );
            Load::Follow(latest)
        }
    }

    /// Reads what the status line shows: bytes in use, last writer.
    fn refresh_view(&mut self) {
        if let Ok(snapshot) = self.segment.read_consistent(0, self.segment.size()) {
            self.view.in_use = snapshot
                .data
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |i| i + 1);
            self.view.latest = Some((decode(&snapshot.data).0, snapshot.generation));
            self.view.generation = snapshot.generation;
        }
        if let Ok(info) = self.segment.info() {
            self.view.last_write = info.last_writer_pid.zip(info.last_write);
            self.view.last_write_host = info.remote.and_then(|r| r.last_writer_host);
        }
    }

    /// Reports an error from the watcher thread.
    pub fn on_watch_error(&mut self, error: &Error) {
        self.say(
            Kind::Error,
            format!("Stopped following changes: {}", plain(error)),
        );
    }
}

/// The longest start of `text` that fits in `capacity` bytes without
/// splitting a character.
pub fn fit(text: &str, capacity: usize) -> &str {
    if text.len() <= capacity {
        return text;
    }
    let mut end = capacity;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The segment's bytes as editable text: trailing zero padding dropped,
/// invalid UTF-8 and control characters (but newlines and tabs) replaced.
/// Also says whether anything was replaced.
pub fn decode(bytes: &[u8]) -> (String, bool) {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let lossy = String::from_utf8_lossy(&bytes[..end]);
    let mut replaced = matches!(lossy, std::borrow::Cow::Owned(_));
    let text: String = lossy
        .replace("\r\n", "\n")
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                replaced = true;
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect();
    (text, replaced)
}

/// An error in plain words, for the status line.
pub fn plain(error: &Error) -> String {
    match error {
        Error::Inconsistent { .. } => {
            "The segment's text may be torn: a writer died in the middle of a write. Write to repair it."
                .into()
        }
        Error::Timeout { waiting_for: WaitFor::Lock, timeout, .. } => format!(
            "The lock stayed busy for {} s: another process holds it.",
            timeout.as_secs_f64()
        ),
        Error::Timeout { timeout, .. } => format!(
            "Another process kept writing for {} s; try again.",
            timeout.as_secs_f64()
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_never_splits_a_character() {
        assert_eq!(fit("hello", 10), "hello");
        assert_eq!(fit("hello", 3), "hel");
        assert_eq!(fit("你好", 5), "你"); // 3 + 3 bytes
        assert_eq!(fit("你好", 2), "");
        assert_eq!(fit("a😀", 4), "a");
        assert_eq!(fit("a😀", 5), "a😀");
    }

    #[test]
    fn decode_drops_padding_and_replaces_what_is_not_text() {
        assert_eq!(decode(b"hi\0\0\0"), ("hi".into(), false));
        assert_eq!(
            decode("你好\n第二行\0".as_bytes()),
            ("你好\n第二行".into(), false)
        );
        assert_eq!(decode(b"a\r\nb"), ("a\nb".into(), false));
        assert_eq!(decode(b"a\0b\0"), ("a\u{fffd}b".into(), true));
        assert_eq!(decode(b"a\xffb"), ("a\u{fffd}b".into(), true));
        assert_eq!(decode(b"\0\0"), (String::new(), false));
    }
}
