//! The shmbox demo as a desktop window: the FoxPro sample's form (an edit box
//! on top, "Read from shared memory" and "Write to shared memory" below),
//! over a named segment, by default `MYAPPSHAREDMEMORY` of 1024 bytes. Run it
//! two or more times and pass text between the windows.
//!
//! It behaves as the terminal demo does, with the same logic
//! (`shmbox-form`): the segment lives until the last window closes; Write
//! pads with zero bytes and never splits a character; a status line tells
//! what the segment holds and who wrote it; "Live" follows other windows'
//! writes through the segment's change notification, never by polling, and
//! never over unsaved edits.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::SystemTime;

use eframe::egui::{
    self, Align, FontData, FontFamily, Key, KeyboardShortcut, Layout, Modifiers, RichText, TextEdit,
};
use eframe::epaint::text::{FontInsert, FontPriority, InsertFontFamily};
use shmbox::AnySegment;
use shmbox_form::{Confirm, Form, Kind, Load, Step};

pub use shmbox_form::{DEFAULT_NAME, DEFAULT_SIZE, open, open_at};

/// The buttons' labels: what a screen reader announces, and what tests
/// find them by.
pub const READ_LABEL: &str = "Read from shared memory";
pub const WRITE_LABEL: &str = "Write to shared memory";
pub const LIVE_LABEL: &str = "Live";
/// The edit box's accessible label.
pub const EDITOR_LABEL: &str = "Text to share";

const READ_KEY: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::R);
const WRITE_KEY: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::W);
const LIVE_KEY: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::L);

/// The demo window's state.
pub struct DemoApp {
    form: Form,
    text: String,
    /// Generations reported by the watcher thread, once it runs, and the
    /// thread (dropped with the window, which closes its handle).
    changes: Option<(Receiver<shmbox::Result<u64>>, shmbox_form::Watcher)>,
    /// A write waits for the lock: finish it after showing that it waits.
    pending_write: bool,
    /// Where to write what the window shows, for scripts (see `Dump`).
    dump: Option<Dump>,
    /// The edit box has had the focus once (it gets it at the start).
    focused_once: bool,
    /// The text was replaced by a Read: put the cursor at its end, as after
    /// typing it.
    cursor_to_end: bool,
}

impl std::fmt::Debug for DemoApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoApp")
            .field("form", &self.form)
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl DemoApp {
    /// A window on `segment`, with an empty edit box, as the sample starts.
    pub fn new(segment: Arc<AnySegment>) -> DemoApp {
        DemoApp {
            form: Form::new(segment),
            text: String::new(),
            changes: None,
            pending_write: false,
            dump: None,
            focused_once: false,
            cursor_to_end: false,
        }
    }

    /// Also write, after each frame that changed something, the edit box's
    /// text and where the widgets are to `path`, for scripts that drive the
    /// window from outside (`.ci/gui` clicks the buttons where this says
    /// they are, and checks the text). The file is replaced whole each time:
    ///
    /// ```text
    /// editor X Y W H      (window pixels)
    /// read X Y W H
    /// write X Y W H
    /// live X Y W H
    /// text
    /// <the edit box's text, to the end of the file>
    /// ```
    pub fn dump_to(mut self, path: PathBuf) -> DemoApp {
        self.dump = Some(Dump {
            path,
            last: String::new(),
        });
        self
    }

    /// The text in the edit box.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The form's logic and state.
    pub fn form(&self) -> &Form {
        &self.form
    }

    /// Starts following the segment's change notification, waking the UI
    /// through `ctx` at each commit.
    fn watch(&mut self, ctx: &egui::Context) {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let watcher = shmbox_form::watch_changes(Arc::clone(self.form.segment()), move |change| {
            let open = tx.send(change).is_ok();
            ctx.request_repaint();
            open
        });
        self.changes = Some((rx, watcher));
    }

    /// Takes in what the watcher reported.
    fn take_changes(&mut self) {
        let Some((changes, _)) = &self.changes else {
            return;
        };
        let reported: Vec<_> = changes.try_iter().collect();
        for change in reported {
            let load = match change {
                Ok(generation) => self.form.on_change(generation, &self.text),
                Err(e) => {
                    self.form.on_watch_error(&e);
                    Load::Keep
                }
            };
            self.apply(load);
        }
    }

    fn apply(&mut self, load: Load) {
        match load {
            Load::Keep => {}
            Load::Replace(text) => {
                self.text = text;
                self.cursor_to_end = true;
            }
            // egui keeps the cursor's place, clamped to the new text.
            Load::Follow(text) => self.text = text,
        }
    }

    fn read(&mut self) {
        let load = self.form.read(&self.text);
        self.apply(load);
    }

    fn write(&mut self, ctx: &egui::Context) {
        if self.form.write(&self.text) == Step::WaitForLock {
            // Show "waiting for the lock" first; the next frame waits.
            self.pending_write = true;
            ctx.request_repaint();
        }
    }

    fn toggle_live(&mut self) {
        let load = self.form.toggle_live(&self.text);
        self.apply(load);
    }

    /// Draws the window and handles what the user did.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        let ctx = ui.ctx().clone();
        if self.changes.is_none() {
            add_cjk_font(&ctx);
            self.watch(&ctx);
        }
        if std::mem::take(&mut self.pending_write) {
            self.form.finish_pending(&self.text);
        }
        self.take_changes();

        let asking = self.form.confirm().is_some();
        if !asking {
            if ui.input_mut(|i| i.consume_shortcut(&READ_KEY)) {
                self.read();
            }
            if ui.input_mut(|i| i.consume_shortcut(&WRITE_KEY)) {
                self.write(&ctx);
            }
            if ui.input_mut(|i| i.consume_shortcut(&LIVE_KEY)) {
                self.toggle_live();
            }
        }

        let mut rects = Rects::default();
        egui::Frame::central_panel(ui.style()).show(ui, |ui| {
            ui.add_enabled_ui(!asking, |ui| {
                let status_height = 3.0 * ui.text_style_height(&egui::TextStyle::Body) + 24.0;
                let buttons_height = ui.spacing().interact_size.y + 12.0;
                let editor_height =
                    (ui.available_height() - status_height - buttons_height).max(60.0);
                let editor = ui
                    .add(
                        TextEdit::multiline(&mut self.text)
                            .id(editor_id())
                            .desired_width(f32::INFINITY)
                            .min_size(egui::vec2(0.0, editor_height))
                            .hint_text("Type here, then Write; Read in another window."),
                    )
                    .accessible_name(EDITOR_LABEL);
                rects.editor = editor.rect;
                if std::mem::take(&mut self.cursor_to_end) {
                    cursor_to_end(&ctx, &self.text);
                }
                if !std::mem::replace(&mut self.focused_once, true) {
                    editor.request_focus();
                }
                ui.add_space(6.0);
                ui.horizontal(|ui| {
                    let read = ui.button(READ_LABEL).on_hover_text(shortcut_hint(
                        &ctx,
                        "Replace the text with the segment's",
                        &READ_KEY,
                    ));
                    rects.read = read.rect;
                    if read.clicked() {
                        self.read();
                    }
                    let write = ui.button(WRITE_LABEL).on_hover_text(shortcut_hint(
                        &ctx,
                        "Write the text, padded with zero bytes",
                        &WRITE_KEY,
                    ));
                    rects.write = write.rect;
                    if write.clicked() {
                        self.write(&ctx);
                    }
                    let mut live = self.form.live();
                    let toggle = ui
                        .checkbox(&mut live, LIVE_LABEL)
                        .on_hover_text(shortcut_hint(
                            &ctx,
                            "Follow other processes' writes as they happen",
                            &LIVE_KEY,
                        ));
                    rects.live = toggle.rect;
                    if toggle.clicked() {
                        self.toggle_live();
                    }
                });
                ui.add_space(6.0);
                self.status(ui);
            });
        });
        if asking {
            self.confirm(ui);
        }
        if let Some(dump) = &mut self.dump {
            dump.write(&rects, &self.text, ctx.pixels_per_point());
        }
    }

    /// The status line: the segment, the latest news.
    fn status(&self, ui: &mut egui::Ui) {
        let form = &self.form;
        let segment = form.segment();
        let view = form.view();
        ui.horizontal_wrapped(|ui| {
            ui.label(format!(
                "{} · {} bytes · {} in use · generation {}",
                segment.name(),
                segment.size(),
                view.in_use,
                form.generation()
            ));
            if let Some((pid, at)) = view.last_write {
                ui.label(format!("· last write: pid {pid}, {}", ago(at)));
            }
            if form.others_wrote() {
                ui.label(
                    RichText::new("· another process wrote since your last read")
                        .color(ui.visuals().warn_fg_color),
                );
            }
            if form.is_dirty(&self.text) {
                ui.label("· unsaved edits");
            }
        });
        if let Some(message) = form.message() {
            let color = match message.kind {
                Kind::Info => ui.visuals().text_color(),
                Kind::Warning => ui.visuals().warn_fg_color,
                Kind::Error => ui.visuals().error_fg_color,
            };
            ui.with_layout(
                Layout::left_to_right(Align::TOP).with_main_wrap(true),
                |ui| {
                    ui.label(RichText::new(&message.text).color(color));
                },
            );
        }
    }

    /// Asks before Read replaces unsaved edits.
    fn confirm(&mut self, ui: &mut egui::Ui) {
        let Some(Confirm::DiscardAndRead) = self.form.confirm() else {
            return;
        };
        let modal = egui::Modal::new(egui::Id::unique("confirm-read")).show(ui.ctx(), |ui| {
            ui.label("Read would replace your unsaved edits with the segment's text.");
            ui.horizontal(|ui| {
                if ui.button("Discard my edits and read").clicked() {
                    Some(true)
                } else if ui.button("Keep my edits").clicked() {
                    Some(false)
                } else {
                    None
                }
            })
            .inner
        });
        let answer = modal
            .inner
            .or_else(|| modal.should_close().then_some(false));
        if let Some(yes) = answer {
            let load = self.form.answer(yes);
            self.apply(load);
        }
    }
}

impl eframe::App for DemoApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        DemoApp::ui(self, ui);
    }
}

fn editor_id() -> egui::Id {
    egui::Id::unique("shmbox-gui editor")
}

/// Puts the edit box's cursor after the last character.
fn cursor_to_end(ctx: &egui::Context, text: &str) {
    let id = editor_id();
    let mut state = egui::text_edit::TextEditState::load(ctx, id).unwrap_or_default();
    let end = egui::text::CCursor::new(text.chars().count());
    state
        .cursor
        .set_char_range(Some(egui::text::CCursorRange::one(end)));
    state.store(ctx, id);
}

fn shortcut_hint(ctx: &egui::Context, what: &str, key: &KeyboardShortcut) -> String {
    format!("{what} ({})", ctx.format_shortcut(key))
}

/// "12 s ago", roughly.
fn ago(at: SystemTime) -> String {
    match SystemTime::now().duration_since(at) {
        Ok(d) if d.as_secs() < 60 => format!("{} s ago", d.as_secs()),
        Ok(d) if d.as_secs() < 3600 => format!("{} min ago", d.as_secs() / 60),
        Ok(d) => format!("{} h ago", d.as_secs() / 3600),
        Err(_) => "just now".into(),
    }
}

/// Where the last frame put things, in window pixels.
#[derive(Debug)]
struct Rects {
    editor: egui::Rect,
    read: egui::Rect,
    write: egui::Rect,
    live: egui::Rect,
}

impl Default for Rects {
    fn default() -> Rects {
        Rects {
            editor: egui::Rect::NOTHING,
            read: egui::Rect::NOTHING,
            write: egui::Rect::NOTHING,
            live: egui::Rect::NOTHING,
        }
    }
}

/// What the window shows, written to a file (see `DemoApp::dump_to`).
struct Dump {
    path: PathBuf,
    last: String,
}

impl Dump {
    fn write(&mut self, rects: &Rects, text: &str, pixels_per_point: f32) {
        let line = |name: &str, r: egui::Rect| {
            let r = r * pixels_per_point;
            format!(
                "{name} {:.0} {:.0} {:.0} {:.0}\n",
                r.min.x,
                r.min.y,
                r.width(),
                r.height()
            )
        };
        let content = [
            line("editor", rects.editor),
            line("read", rects.read),
            line("write", rects.write),
            line("live", rects.live),
            format!("text\n{text}"),
        ]
        .concat();
        if content != self.last {
            // Written whole, then renamed: a reader never sees half of it.
            let partial = self.path.with_extension("partial");
            if std::fs::write(&partial, &content).is_ok()
                && std::fs::rename(&partial, &self.path).is_ok()
            {
                self.last = content;
            }
        }
    }
}

/// egui's own fonts have no Chinese, Japanese or Korean glyphs, and the
/// sample is Chinese: use a system CJK font as a fallback where there is one.
fn add_cjk_font(ctx: &egui::Context) {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
        "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
        "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
        "/System/Library/Fonts/PingFang.ttc",
        "C:\\Windows\\Fonts\\msyh.ttc",
        "C:\\Windows\\Fonts\\simsun.ttc",
    ];
    let Some(bytes) = CANDIDATES.iter().find_map(|p| std::fs::read(p).ok()) else {
        return;
    };
    ctx.add_font(FontInsert::new(
        "cjk-fallback",
        FontData::from_owned(bytes),
        vec![
            InsertFontFamily {
                family: FontFamily::Proportional,
                priority: FontPriority::Lowest,
            },
            InsertFontFamily {
                family: FontFamily::Monospace,
                priority: FontPriority::Lowest,
            },
        ],
    ));
}
