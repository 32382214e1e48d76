//! The demo's state and behaviour: the text being edited, what the segment
//! holds, and what the user is asked. No terminal here: tests drive it with
//! events and draw it on ratatui's `TestBackend`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::{CursorMove, DataCursor, TextArea, WrapMode};
use shmbox::{Error, Segment, SegmentGuard, WaitFor};

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

/// What the run loop must do after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Draw, and wait for the next event.
    Continue,
    /// Draw (the status says we wait for the lock), then call
    /// [`App::finish_pending`], which blocks until the lock comes or times out.
    WaitForLock,
    /// Leave.
    Quit,
}

/// What the app knows of the segment, refreshed when a writer commits.
#[derive(Debug, Clone, Default)]
pub struct SegmentView {
    /// Bytes up to the last non-zero byte.
    pub in_use: usize,
    /// The last committed write's process and time.
    pub last_write: Option<(u32, SystemTime)>,
    /// The segment's content at the last refresh, and its generation.
    latest: Option<(String, u64)>,
}

/// Where the last frame put the clickable things.
#[derive(Debug, Clone, Copy, Default)]
pub struct Areas {
    pub read: Rect,
    pub write: Rect,
    pub live: Rect,
    pub editor_inner: Rect,
    pub confirm_yes: Rect,
    pub confirm_no: Rect,
}

/// The demo.
pub struct App {
    pub(crate) segment: Arc<Segment>,
    pub(crate) editor: TextArea<'static>,
    /// The text as last read from or written to the segment.
    baseline: String,
    /// The generation of what the editor was last loaded from or saved as.
    pub(crate) shown_generation: u64,
    pub(crate) live: bool,
    pub(crate) confirm: Option<Confirm>,
    pub(crate) message: Option<Message>,
    pub(crate) view: SegmentView,
    pub(crate) areas: Areas,
    pending_write: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("segment", &self.segment.name())
            .field("text", &self.text())
            .field("dirty", &self.is_dirty())
            .field("shown_generation", &self.shown_generation)
            .field("live", &self.live)
            .field("confirm", &self.confirm)
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

impl App {
    /// A demo on `segment`, with an empty edit box, as the sample starts.
    pub fn new(segment: Arc<Segment>) -> App {
        let mut app = App {
            segment,
            editor: editor_with(""),
            baseline: String::new(),
            shown_generation: 0,
            live: false,
            confirm: None,
            message: None,
            view: SegmentView::default(),
            areas: Areas::default(),
            pending_write: false,
        };
        app.refresh_view();
        app.message = Some(Message {
            kind: Kind::Info,
            text: "Type some text, then Write it; start another demo and Read it there.".into(),
        });
        app
    }

    /// The text in the edit box.
    pub fn text(&self) -> String {
        self.editor.lines().join("\n")
    }

    /// Replaces the text in the edit box, as if typed.
    pub fn set_text(&mut self, text: &str) {
        self.editor = editor_with(text);
        self.editor.move_cursor(CursorMove::Bottom);
        self.editor.move_cursor(CursorMove::End);
    }

    /// Whether the edit box differs from what was last read or written.
    pub fn is_dirty(&self) -> bool {
        self.text() != self.baseline
    }

    /// Whether a process committed a write that this demo has not loaded
    /// (or made) since.
    pub fn others_wrote(&self) -> bool {
        self.segment.generation() > self.shown_generation
    }

    /// The segment's current generation.
    pub fn generation(&self) -> u64 {
        self.segment.generation()
    }

    pub fn segment(&self) -> &Segment {
        &self.segment
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

    /// Where the last frame drew the buttons and the edit box.
    pub fn areas(&self) -> Areas {
        self.areas
    }

    fn say(&mut self, kind: Kind, text: impl Into<String>) {
        self.message = Some(Message {
            kind,
            text: text.into(),
        });
    }

    /// Handles one terminal event.
    pub fn handle(&mut self, event: Event) -> Step {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Event::Mouse(mouse) => self.on_mouse(mouse),
            Event::Paste(text) if self.confirm.is_none() => {
                self.editor
                    .insert_str(text.replace("\r\n", "\n").replace('\r', "\n"));
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    fn on_key(&mut self, key: KeyEvent) -> Step {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(key.code, KeyCode::Char('c' | 'q')) {
            return Step::Quit;
        }
        if self.confirm.is_some() {
            match key.code {
                KeyCode::Char('y' | 'Y') | KeyCode::Enter => return self.answer(true),
                KeyCode::Char('n' | 'N') | KeyCode::Esc => return self.answer(false),
                _ => return Step::Continue,
            }
        }
        match (ctrl, key.code) {
            (true, KeyCode::Char('r')) => self.read(),
            (true, KeyCode::Char('w')) => self.write(),
            (true, KeyCode::Char('l')) => self.toggle_live(),
            _ => {
                self.editor.input(key);
                Step::Continue
            }
        }
    }

    fn on_mouse(&mut self, mouse: MouseEvent) -> Step {
        let at = Position::new(mouse.column, mouse.row);
        match mouse.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let a = self.areas;
                if self.confirm.is_some() {
                    if a.confirm_yes.contains(at) {
                        return self.answer(true);
                    }
                    if a.confirm_no.contains(at) {
                        return self.answer(false);
                    }
                    return Step::Continue;
                }
                if a.read.contains(at) {
                    self.read()
                } else if a.write.contains(at) {
                    self.write()
                } else if a.live.contains(at) {
                    self.toggle_live()
                } else {
                    if a.editor_inner.contains(at) {
                        let DataCursor(row, col) = self.editor.screen_to_data(
                            usize::from(at.y - a.editor_inner.y),
                            usize::from(at.x - a.editor_inner.x),
                        );
                        self.editor
                            .move_cursor(CursorMove::Jump(clamp_u16(row), clamp_u16(col)));
                    }
                    Step::Continue
                }
            }
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown
                if self.confirm.is_none() && self.areas.editor_inner.contains(at) =>
            {
                self.editor.input(Event::Mouse(mouse));
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    fn answer(&mut self, yes: bool) -> Step {
        match self.confirm.take() {
            Some(Confirm::DiscardAndRead) if yes => self.load_from_segment(),
            Some(Confirm::DiscardAndRead) => {
                self.say(Kind::Info, "Kept your edits; nothing was read.");
            }
            None => {}
        }
        Step::Continue
    }

    /// "Read from shared memory": asks first if that would lose edits.
    pub fn read(&mut self) -> Step {
        if self.is_dirty() {
            self.confirm = Some(Confirm::DiscardAndRead);
        } else {
            self.load_from_segment();
        }
        Step::Continue
    }

    fn load_from_segment(&mut self) {
        match self.segment.read_consistent(0, self.segment.size()) {
            Ok(snapshot) => {
                let (text, replaced) = decode(&snapshot.data);
                self.load(&text, snapshot.generation, false);
                let mut news = format!(
                    "Read {} bytes (generation {}).",
                    text.len(),
                    snapshot.generation
                );
                if replaced {
                    news.push_str(" Bytes that are not text are shown as \u{fffd}.");
                }
                self.say(Kind::Info, news);
            }
            Err(e) => self.say(Kind::Error, plain(&e)),
        }
    }

    /// Puts `text` in the edit box: with the cursor where it was (clamped),
    /// when following live, or at the end, after a Read.
    fn load(&mut self, text: &str, generation: u64, keep_cursor: bool) {
        let DataCursor(row, col) = self.editor.cursor();
        self.editor = editor_with(text);
        if keep_cursor {
            self.editor
                .move_cursor(CursorMove::Jump(clamp_u16(row), clamp_u16(col)));
        } else {
            self.editor.move_cursor(CursorMove::Bottom);
            self.editor.move_cursor(CursorMove::End);
        }
        self.baseline = text.to_owned();
        self.shown_generation = generation;
    }

    /// "Write to shared memory": the text, padded with zero bytes to the
    /// segment's size. Returns [`Step::WaitForLock`] if the lock is busy.
    pub fn write(&mut self) -> Step {
        let segment = Arc::clone(&self.segment);
        match segment.try_lock() {
            Ok(Some(guard)) => {
                self.write_with(guard, None);
                Step::Continue
            }
            Ok(None) => {
                let holder = shmbox::info(segment.name())
                    .ok()
                    .and_then(|i| i.lock_owner_pid())
                    .map_or(String::from("another process"), |pid| format!("pid {pid}"));
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

    /// Finishes a write that waited for the lock.
    pub fn finish_pending(&mut self) {
        if !std::mem::take(&mut self.pending_write) {
            return;
        }
        let segment = Arc::clone(&self.segment);
        let asked = Instant::now();
        match segment.lock() {
            Ok(guard) => self.write_with(guard, Some(asked.elapsed())),
            Err(e @ Error::Timeout { .. }) => {
                self.say(Kind::Error, format!("{} Nothing was written.", plain(&e)))
            }
            Err(e) => self.say(Kind::Error, plain(&e)),
        }
    }

    fn write_with(&mut self, mut guard: SegmentGuard<'_>, waited: Option<Duration>) {
        let text = self.text();
        let size = guard.segment().size();
        let kept = fit(&text, size);
        let mut bytes = vec![0u8; size];
        bytes[..kept.len()].copy_from_slice(kept.as_bytes());
        let died = guard.owner_died();
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
        self.baseline = kept.to_owned();
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
            news.push_str(&format!(
                " Took the lock over from pid {pid}, which had died holding it."
            ));
        }
        self.say(kind, news);
    }

    /// Turns live mode on or off. On, the edit box follows other processes'
    /// writes, unless it holds unsaved edits.
    pub fn toggle_live(&mut self) -> Step {
        self.live = !self.live;
        if !self.live {
            self.say(Kind::Info, "Live off: Read to load what others write.");
            return Step::Continue;
        }
        self.say(
            Kind::Info,
            "Live on: the text follows other processes' writes.",
        );
        if self.others_wrote() {
            self.follow();
        }
        Step::Continue
    }

    /// A writer committed generation `generation` (reported by the watcher
    /// thread, which sleeps on the segment's change notification).
    pub fn on_change(&mut self, generation: u64) {
        self.refresh_view();
        if self.live && generation > self.shown_generation {
            self.follow();
        }
    }

    /// Loads the latest content in live mode, unless that would lose edits.
    fn follow(&mut self) {
        let Some((text, generation)) = self.view.latest.clone() else {
            return;
        };
        if generation <= self.shown_generation {
            return;
        }
        let writer = self
            .view
            .last_write
            .map_or(String::from("another process"), |(pid, _)| {
                format!("pid {pid}")
            });
        if self.is_dirty() {
            self.say(
                Kind::Warning,
                format!(
                    "{writer} wrote generation {generation}; your unsaved edits are kept (Ctrl-R loads theirs)."
                ),
            );
        } else {
            self.load(&text, generation, true);
            self.say(
                Kind::Info,
                format!("Live: loaded generation {generation} from {writer}."),
            );
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
        }
        if let Ok(info) = self.segment.info() {
            self.view.last_write = info.last_writer_pid.zip(info.last_write);
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

fn editor_with(text: &str) -> TextArea<'static> {
    let mut editor = TextArea::new(text.split('\n').map(String::from).collect());
    editor.set_wrap_mode(WrapMode::WordOrGlyph);
    editor.set_cursor_line_style(ratatui::style::Style::default());
    editor
}

fn clamp_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
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
