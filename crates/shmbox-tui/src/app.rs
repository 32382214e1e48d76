//! The demo's state and behaviour: the text being edited, what the segment
//! holds, and what the user is asked. No terminal here: tests drive it with
//! events and draw it on ratatui's `TestBackend`.

use std::sync::Arc;

use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::{Position, Rect};
use ratatui_textarea::{CursorMove, DataCursor, TextArea, WrapMode};
use shmbox::{AnySegment, Error};

use shmbox_form::Form;
pub use shmbox_form::{Confirm, Kind, Load, Message, SegmentView, Step, decode, fit};

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

/// The demo: the form's logic (`shmbox-form`), an editor, and where things
/// were drawn.
pub struct App {
    pub(crate) form: Form,
    pub(crate) editor: TextArea<'static>,
    pub(crate) areas: Areas,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("form", &self.form)
            .field("text", &self.text())
            .field("dirty", &self.is_dirty())
            .finish_non_exhaustive()
    }
}

impl App {
    /// A demo on `segment`, with an empty edit box, as the sample starts.
    pub fn new(segment: Arc<AnySegment>) -> App {
        App {
            form: Form::new(segment),
            editor: editor_with(""),
            areas: Areas::default(),
        }
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
        self.form.is_dirty(&self.text())
    }

    /// Whether a process committed a write that this demo has not loaded
    /// (or made) since.
    pub fn others_wrote(&self) -> bool {
        self.form.others_wrote()
    }

    /// The segment's current generation.
    pub fn generation(&self) -> u64 {
        self.form.generation()
    }

    pub fn segment(&self) -> &AnySegment {
        self.form.segment()
    }

    pub fn live(&self) -> bool {
        self.form.live()
    }

    pub fn confirm(&self) -> Option<Confirm> {
        self.form.confirm()
    }

    pub fn message(&self) -> Option<&Message> {
        self.form.message()
    }

    /// What the status line shows of the segment.
    pub fn view(&self) -> &SegmentView {
        self.form.view()
    }

    /// Where the last frame drew the buttons and the edit box.
    pub fn areas(&self) -> Areas {
        self.areas
    }

    /// Does to the editor what the form asks.
    fn apply(&mut self, load: Load) {
        match load {
            Load::Keep => {}
            Load::Replace(text) => self.set_text(&text),
            Load::Follow(text) => {
                let DataCursor(row, col) = self.editor.cursor();
                self.editor = editor_with(&text);
                self.editor
                    .move_cursor(CursorMove::Jump(clamp_u16(row), clamp_u16(col)));
            }
        }
    }

    /// Handles one terminal event.
    pub fn handle(&mut self, event: Event) -> Step {
        match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => self.on_key(key),
            Event::Mouse(mouse) => self.on_mouse(mouse),
            Event::Paste(text) if self.form.confirm().is_none() => {
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
        if self.form.confirm().is_some() {
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
                if self.form.confirm().is_some() {
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
                if self.form.confirm().is_none() && self.areas.editor_inner.contains(at) =>
            {
                self.editor.input(Event::Mouse(mouse));
                Step::Continue
            }
            _ => Step::Continue,
        }
    }

    fn answer(&mut self, yes: bool) -> Step {
        let load = self.form.answer(yes);
        self.apply(load);
        Step::Continue
    }

    /// "Read from shared memory": asks first if that would lose edits.
    pub fn read(&mut self) -> Step {
        let load = self.form.read(&self.text());
        self.apply(load);
        Step::Continue
    }

    /// "Write to shared memory": the text, padded with zero bytes to the
    /// segment's size. Returns [`Step::WaitForLock`] if the lock is busy.
    pub fn write(&mut self) -> Step {
        self.form.write(&self.text())
    }

    /// Finishes a write that waited for the lock.
    pub fn finish_pending(&mut self) {
        self.form.finish_pending(&self.text());
    }

    /// Turns live mode on or off. On, the edit box follows other processes'
    /// writes, unless it holds unsaved edits.
    pub fn toggle_live(&mut self) -> Step {
        let load = self.form.toggle_live(&self.text());
        self.apply(load);
        Step::Continue
    }

    /// A writer committed generation `generation` (reported by the watcher
    /// thread, which sleeps on the segment's change notification).
    pub fn on_change(&mut self, generation: u64) {
        let load = self.form.on_change(generation, &self.text());
        self.apply(load);
    }

    /// Reports an error from the watcher thread.
    pub fn on_watch_error(&mut self, error: &Error) {
        self.form.on_watch_error(error);
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
