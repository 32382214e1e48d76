//! Drawing the form: title, edit box, buttons, status, news and help.
//!
//! ```text
//!  shmbox demo: exchange text between processes through shared memory
//! ┌ Text: 12 of 1024 bytes ─────────────────────────────── unsaved edits ┐
//! │hello                                                                 │
//! └──────────────────────────────────────────────────────────────────────┘
//! ┌─────────────────────────┐ ┌────────────────────────┐ ┌────────────┐
//! │ Read from shared memory │ │ Write to shared memory │ │  [x] Live  │
//! └──────── Ctrl-R ─────────┘ └──────── Ctrl-W ────────┘ └── Ctrl-L ──┘
//! Segment MYAPPSHAREDMEMORY: 1024 bytes, 5 in use · generation 3
//! Last write: pid 4242 at 02:37:19 UTC
//! ● Another process wrote since your last read.
//! Wrote 5 bytes and 1019 zero bytes of padding (generation 3).
//!
//! Ctrl-R read · Ctrl-W write · Ctrl-L live · Ctrl-Q quit · or click
//! ```

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};

use crate::app::{App, Confirm, Kind};

const READ_LABEL: &str = "Read from shared memory";
const WRITE_LABEL: &str = "Write to shared memory";

/// Draws the whole form, and remembers where the buttons went.
pub fn render(frame: &mut Frame, app: &mut App) {
    let [title, editor, buttons, status, news, help] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(3),
        Constraint::Length(3),
        Constraint::Length(2),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    frame.render_widget(
        Paragraph::new(" shmbox demo: exchange text between processes through shared memory ")
            .alignment(Alignment::Center)
            .add_modifier(Modifier::BOLD),
        title,
    );
    render_editor(frame, app, editor);
    render_buttons(frame, app, buttons);
    render_status(frame, app, status);
    render_news(frame, app, news);
    frame.render_widget(
        Paragraph::new(
            "Ctrl-R read · Ctrl-W write · Ctrl-L live · Ctrl-Q quit · or click a button",
        )
        .style(Style::default().add_modifier(Modifier::DIM)),
        help,
    );
    if app.confirm().is_some() {
        render_confirm(frame, app, editor);
    } else {
        app.areas.confirm_yes = Rect::default();
        app.areas.confirm_no = Rect::default();
    }
}

fn render_editor(frame: &mut Frame, app: &mut App, area: Rect) {
    let text_len = app.text().len();
    let size = app.segment().size();
    let count_style = if text_len > size {
        Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::default()
    };
    let mut block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(Line::from(vec![
            Span::raw(" Text: "),
            Span::styled(format!("{text_len} of {size} bytes"), count_style),
            Span::raw(" "),
        ]));
    if app.is_dirty() {
        block = block.title(Line::from(" unsaved edits ").right_aligned().yellow());
    }
    app.areas.editor_inner = block.inner(area);
    app.editor.set_block(block);
    frame.render_widget(&app.editor, area);
}

fn render_buttons(frame: &mut Frame, app: &mut App, area: Rect) {
    let live_label = if app.live() { "[x] Live" } else { "[ ] Live" };
    let width = |label: &str| label.chars().count() as u16 + 4;
    let [read, write, live] = Layout::horizontal([
        Constraint::Length(width(READ_LABEL)),
        Constraint::Length(width(WRITE_LABEL)),
        Constraint::Length(width(live_label) + 2),
    ])
    .flex(Flex::Center)
    .spacing(1)
    .areas(area);
    button(frame, read, READ_LABEL, "Ctrl-R", false);
    button(frame, write, WRITE_LABEL, "Ctrl-W", false);
    button(frame, live, live_label, "Ctrl-L", app.live());
    app.areas.read = read;
    app.areas.write = write;
    app.areas.live = live;
}

fn button(frame: &mut Frame, area: Rect, label: &str, key: &str, on: bool) {
    let style = if on {
        Style::default()
            .fg(Color::Green)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .title_bottom(Line::from(format!(" {key} ")).centered());
    frame.render_widget(
        Paragraph::new(label)
            .alignment(Alignment::Center)
            .style(style)
            .block(block),
        area,
    );
}

fn render_status(frame: &mut Frame, app: &App, area: Rect) {
    let size = app.segment().size();
    let facts = Line::from(format!(
        "Segment {}: {size} bytes, {} in use · generation {}",
        app.segment().name(),
        app.view().in_use,
        app.generation()
    ));
    let last_write = Line::from(match app.view().last_write {
        Some((pid, when)) => format!("Last write: pid {pid} at {} UTC", clock(when)),
        None => "Last write: none yet".into(),
    });
    let marker = if app.others_wrote() {
        Line::from("● Another process wrote since your last read.")
            .fg(Color::Yellow)
            .add_modifier(Modifier::BOLD)
    } else {
        Line::default()
    };
    frame.render_widget(Paragraph::new(vec![facts, last_write, marker]), area);
}

fn render_news(frame: &mut Frame, app: &App, area: Rect) {
    let Some(message) = app.message() else { return };
    let style = match message.kind {
        Kind::Info => Style::default(),
        Kind::Warning => Style::default().fg(Color::Yellow),
        Kind::Error => Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
    };
    frame.render_widget(
        Paragraph::new(message.text.as_str())
            .style(style)
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn render_confirm(frame: &mut Frame, app: &mut App, over: Rect) {
    let Some(Confirm::DiscardAndRead) = app.confirm() else {
        return;
    };
    let width = over.width.saturating_sub(4).min(64);
    let [area] = Layout::horizontal([Constraint::Length(width)])
        .flex(Flex::Center)
        .areas(over);
    let [area] = Layout::vertical([Constraint::Length(7)])
        .flex(Flex::Center)
        .areas(area);
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .title(" Unsaved edits ")
        .fg(Color::Yellow);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [text, _, choices] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new("Reading replaces your unsaved edits with the segment's text.")
            .wrap(Wrap { trim: true })
            .alignment(Alignment::Center),
        text,
    );
    let yes = "[ y: discard and read ]";
    let no = "[ n: keep editing ]";
    let [yes_area, no_area] = Layout::horizontal([
        Constraint::Length(yes.chars().count() as u16),
        Constraint::Length(no.chars().count() as u16),
    ])
    .flex(Flex::Center)
    .spacing(3)
    .areas(choices);
    frame.render_widget(Paragraph::new(yes).bold(), yes_area);
    frame.render_widget(Paragraph::new(no).bold(), no_area);
    app.areas.confirm_yes = yes_area;
    app.areas.confirm_no = no_area;
}

/// `HH:MM:SS` of a time, in UTC.
fn clock(t: std::time::SystemTime) -> String {
    let full = humantime::format_rfc3339_seconds(t).to_string();
    full.get(11..19).unwrap_or(&full).to_owned()
}
