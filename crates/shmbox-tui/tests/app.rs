//! The demo's state and drawing, on ratatui's TestBackend: typing, Write
//! with padding and UTF-8-safe truncation, Read and its question, live mode,
//! the mouse, paste, lock waits, torn data, and odd terminal sizes.
//!
//! Two `App`s on one segment stand for two processes; the multi-process
//! behaviour of the real program is tested under tmux in shmbox-cli.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use shmbox::{AnySegment, Segment, SegmentOptions};
use shmbox_tui::{App, Confirm, Kind, Step};

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-tui-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn segment(tag: &str, size: usize) -> Arc<AnySegment> {
    Arc::new(AnySegment::Local(
        Segment::create(unique(tag), size).unwrap(),
    ))
}

/// A second process's view of the same segment.
fn other(seg: &AnySegment) -> Arc<AnySegment> {
    Arc::new(AnySegment::Local(Segment::open(seg.name()).unwrap()))
}

fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        let event = if c == '\n' {
            key(KeyCode::Enter)
        } else {
            key(KeyCode::Char(c))
        };
        assert_eq!(app.handle(event), Step::Continue);
    }
}

fn click(app: &mut App, area: Rect) -> Step {
    app.handle(Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: area.x + area.width / 2,
        row: area.y + area.height / 2,
        modifiers: KeyModifiers::NONE,
    }))
}

/// Draws the app on a `width` x `height` test terminal; returns its lines.
fn screen(app: &mut App, width: u16, height: u16) -> Vec<String> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| shmbox_tui::render(frame, app))
        .unwrap();
    let buffer = terminal.backend().buffer();
    (0..height)
        .map(|y| {
            let mut line = String::new();
            let mut skip = 0;
            for x in 0..width {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let symbol = buffer[(x, y)].symbol();
                skip = unicode_width(symbol).saturating_sub(1);
                line.push_str(symbol);
            }
            line
        })
        .collect()
}

/// Wide characters take two cells; the buffer leaves the second empty.
fn unicode_width(symbol: &str) -> usize {
    symbol
        .chars()
        .map(|c| {
            if ('\u{1100}'..='\u{ffdc}').contains(&c) && c as u32 >= 0x2e80 {
                2
            } else {
                1
            }
        })
        .sum()
}

fn contains(screen: &[String], needle: &str) -> bool {
    screen.iter().any(|l| l.contains(needle))
}

fn message(app: &App) -> (Kind, String) {
    let m = app.message().expect("a message");
    (m.kind, m.text.clone())
}

#[test]
fn the_form_at_80_by_24() {
    let seg = segment("form", 1024);
    let mut app = App::new(seg.clone());
    let s = screen(&mut app, 80, 24);
    assert!(s[0].contains("shmbox demo"), "{s:#?}");
    assert!(contains(&s, "Text: 0 of 1024 bytes"));
    assert!(contains(&s, "Read from shared memory"));
    assert!(contains(&s, "Write to shared memory"));
    assert!(contains(&s, "Ctrl-R") && contains(&s, "Ctrl-W") && contains(&s, "Ctrl-L"));
    assert!(contains(&s, "[ ] Live"));
    assert!(contains(
        &s,
        &format!(
            "Segment {}: 1024 bytes, 0 in use · generation 0",
            seg.name()
        )
    ));
    assert!(contains(&s, "Last write: none yet"));
    assert!(
        s[23].contains("Ctrl-Q quit"),
        "the help line is last: {s:#?}"
    );
    assert!(s.iter().all(|l| l.chars().count() == 80));
}

#[test]
fn typing_and_writing_pads_with_zero_bytes() {
    let seg = segment("write", 64);
    let mut app = App::new(seg.clone());
    type_text(&mut app, "你好\nworld");
    assert_eq!(app.text(), "你好\nworld");
    assert!(app.is_dirty());
    let s = screen(&mut app, 80, 24);
    assert!(contains(&s, "│你好"), "{s:#?}");
    assert!(contains(&s, "Text: 12 of 64 bytes"));
    assert!(contains(&s, "unsaved edits"));

    assert_eq!(app.handle(ctrl('w')), Step::Continue);
    let mut expected = "你好\nworld".as_bytes().to_vec();
    expected.resize(64, 0);
    assert_eq!(seg.read(0, 64).unwrap(), expected);
    assert_eq!(
        message(&app),
        (
            Kind::Info,
            "Wrote 12 bytes and 52 zero bytes of padding (generation 1).".into()
        )
    );
    assert!(!app.is_dirty());
    assert!(
        !app.others_wrote(),
        "its own write is not another process's"
    );
    let s = screen(&mut app, 80, 24);
    assert!(contains(&s, "12 in use · generation 1"));
    assert!(contains(
        &s,
        &format!("Last write: pid {}", std::process::id())
    ));
    assert!(!contains(&s, "unsaved edits"));
}

#[test]
fn too_long_a_text_is_cut_at_a_character_boundary_and_said_so() {
    let seg = segment("cut", 8);
    let mut app = App::new(seg.clone());
    type_text(&mut app, "你好你好"); // 12 bytes; 8 would split the third character
    app.write();
    assert_eq!(seg.read(0, 8).unwrap(), b"\xe4\xbd\xa0\xe5\xa5\xbd\0\0");
    let (kind, text) = message(&app);
    assert_eq!(kind, Kind::Warning);
    assert!(
        text.starts_with("The text is 12 bytes but the segment holds 8: the last 6 bytes (2 characters) were cut off."),
        "{text}"
    );
    assert!(app.is_dirty(), "the cut-off part is not in the segment");
    let s = screen(&mut app, 80, 24);
    assert!(contains(&s, "Text: 12 of 8 bytes"));
}

#[test]
fn read_replaces_the_text_and_asks_before_losing_edits() {
    let seg = segment("read", 64);
    let mut a = App::new(seg.clone());
    let mut b = App::new(other(&seg));
    type_text(&mut a, "from A");
    a.handle(ctrl('w'));
    assert!(b.others_wrote());
    assert!(contains(
        &screen(&mut b, 80, 24),
        "● Another process wrote since your last read."
    ));

    b.handle(ctrl('r'));
    assert_eq!(b.text(), "from A");
    assert!(!b.others_wrote());
    assert_eq!(message(&b).1, "Read 6 bytes (generation 1).");

    // Edits in B, a new write from A: Read asks first.
    type_text(&mut b, " and B");
    type_text(&mut a, "!");
    a.handle(ctrl('w'));
    b.handle(ctrl('r'));
    assert_eq!(b.confirm(), Some(Confirm::DiscardAndRead));
    let s = screen(&mut b, 80, 24);
    assert!(
        contains(&s, "Unsaved edits") && contains(&s, "y: discard and read"),
        "{s:#?}"
    );
    // Typing while asked does nothing; "n" keeps the edits.
    b.handle(key(KeyCode::Char('x')));
    b.handle(key(KeyCode::Char('n')));
    assert_eq!(b.confirm(), None);
    assert_eq!(b.text(), "from A and B");
    // "y" discards them.
    b.handle(ctrl('r'));
    b.handle(key(KeyCode::Char('y')));
    assert_eq!(b.text(), "from A!");
    assert!(!b.is_dirty());
}

#[test]
fn live_mode_follows_writes_but_never_overwrites_edits() {
    let seg = segment("live", 64);
    let mut a = App::new(seg.clone());
    let mut b = App::new(other(&seg));
    b.handle(ctrl('l'));
    assert!(b.live());
    assert!(contains(&screen(&mut b, 80, 24), "[x] Live"));

    type_text(&mut a, "one");
    a.handle(ctrl('w'));
    b.on_change(seg.generation().unwrap()); // what the watcher thread reports
    assert_eq!(b.text(), "one");
    assert!(
        message(&b)
            .1
            .starts_with("Live: loaded generation 1 from pid")
    );

    // Live loads keep the cursor where it was (here: the start).
    b.handle(key(KeyCode::End));
    type_text(&mut b, " (mine)");
    type_text(&mut a, " two");
    a.handle(ctrl('w'));
    b.on_change(seg.generation().unwrap());
    assert_eq!(b.text(), "one (mine)", "unsaved edits were overwritten");
    let (kind, text) = message(&b);
    assert_eq!(kind, Kind::Warning);
    assert!(text.contains("your unsaved edits are kept"), "{text}");

    // Live off: news is reported, the text stays.
    let mut c = App::new(other(&seg));
    type_text(&mut a, " three");
    a.handle(ctrl('w'));
    c.on_change(seg.generation().unwrap());
    assert_eq!(c.text(), "");
    assert!(c.others_wrote());
    // Turning live on loads what is there.
    c.handle(ctrl('l'));
    assert_eq!(c.text(), "one two three");
}

#[test]
fn buttons_work_with_the_mouse() {
    let seg = segment("mouse", 64);
    let mut a = App::new(seg.clone());
    screen(&mut a, 80, 24);
    type_text(&mut a, "clicked");
    let areas = a.areas();
    click(&mut a, areas.write);
    assert_eq!(seg.read(0, 7).unwrap(), b"clicked");

    let mut b = App::new(other(&seg));
    screen(&mut b, 80, 24);
    let areas = b.areas();
    click(&mut b, areas.read);
    assert_eq!(b.text(), "clicked");
    click(&mut b, areas.live);
    assert!(b.live());

    // A click in the text moves the cursor there.
    screen(&mut b, 80, 24);
    let inner = b.areas().editor_inner;
    b.handle(Event::Mouse(MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column: inner.x + 2,
        row: inner.y,
        modifiers: KeyModifiers::NONE,
    }));
    type_text(&mut b, "_");
    assert_eq!(b.text(), "cl_icked");

    // The question's answers are clickable too.
    b.handle(ctrl('r'));
    screen(&mut b, 80, 24);
    let areas = b.areas();
    click(&mut b, areas.confirm_no);
    assert_eq!((b.confirm(), b.text().as_str()), (None, "cl_icked"));
    b.handle(ctrl('r'));
    screen(&mut b, 80, 24);
    let areas = b.areas();
    click(&mut b, areas.confirm_yes);
    assert_eq!(b.text(), "clicked");
}

#[test]
fn paste_inserts_text_with_newlines() {
    let seg = segment("paste", 64);
    let mut app = App::new(seg);
    app.handle(Event::Paste("line one\r\nline two\rthree 三".into()));
    assert_eq!(app.text(), "line one\nline two\nthree 三");
}

#[test]
fn cursor_movement_and_deletion() {
    let seg = segment("cursor", 64);
    let mut app = App::new(seg);
    type_text(&mut app, "ab你c");
    app.handle(key(KeyCode::Left));
    app.handle(key(KeyCode::Left));
    app.handle(key(KeyCode::Backspace)); // deletes "b"
    app.handle(key(KeyCode::Home));
    type_text(&mut app, ">");
    app.handle(key(KeyCode::End));
    app.handle(key(KeyCode::Enter));
    type_text(&mut app, "next");
    assert_eq!(app.text(), ">a你c\nnext");
}

#[test]
fn quitting_keys() {
    let seg = segment("quit", 8);
    let mut app = App::new(seg);
    assert_eq!(app.handle(ctrl('q')), Step::Quit);
    assert_eq!(app.handle(ctrl('c')), Step::Quit);
    app.handle(ctrl('r'));
    type_text(&mut app, "x");
    app.handle(ctrl('r')); // asks
    assert_eq!(
        app.handle(ctrl('c')),
        Step::Quit,
        "Ctrl-C quits even while asking"
    );
}

#[test]
fn a_busy_lock_is_shown_then_waited_for() {
    let seg = segment("busy", 16);
    let mut app = App::new(seg.clone());
    type_text(&mut app, "patient");
    let holder = other(&seg);
    let (locked, is_locked) = std::sync::mpsc::channel();
    // The guard stays on the thread that took the lock: a lock is released
    // by the thread that holds it (on Windows it is a mutex).
    std::thread::scope(|s| {
        s.spawn(|| {
            let guard = holder.lock().unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(100));
            drop(guard);
        });
        is_locked.recv().unwrap();
        assert_eq!(app.write(), Step::WaitForLock);
        let (kind, text) = message(&app);
        assert_eq!(kind, Kind::Warning);
        assert!(
            text.starts_with(&format!(
                "Waiting for the lock: pid {} holds it",
                std::process::id()
            )),
            "{text}"
        );
        app.finish_pending();
    });
    assert_eq!(seg.read(0, 7).unwrap(), b"patient");
    assert!(
        message(&app).1.contains("Waited 0.1 s for the lock."),
        "{}",
        message(&app).1
    );
}

#[test]
fn a_lock_that_stays_busy_is_an_error_in_plain_words() {
    let name = unique("busy-timeout");
    let seg = Arc::new(AnySegment::Local(
        SegmentOptions::new()
            .timeout(Duration::from_millis(100))
            .create(&name, 16)
            .unwrap(),
    ));
    let mut app = App::new(seg.clone());
    type_text(&mut app, "never");
    let holder = other(&seg);
    let _guard = holder.lock().unwrap();
    assert_eq!(app.write(), Step::WaitForLock);
    app.finish_pending();
    let (kind, text) = message(&app);
    assert_eq!(kind, Kind::Error);
    assert_eq!(
        text,
        "The lock stayed busy for 0.1 s: another process holds it. Nothing was written."
    );
    assert_eq!(seg.generation().unwrap(), 0);
}

#[test]
fn torn_data_is_reported_not_loaded() {
    let seg = segment("torn", 16);
    let writer = other(&seg);
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let AnySegment::Local(writer) = &*writer else {
            unreachable!("made local above")
        };
        let mut guard = writer.lock().unwrap();
        guard.data_mut().copy_from_slice(0, b"half").unwrap();
        panic!("the writer dies mid-write");
    }));
    let mut app = App::new(seg);
    app.handle(ctrl('r'));
    let (kind, text) = message(&app);
    assert_eq!(kind, Kind::Error);
    assert!(text.starts_with("The segment's text may be torn"), "{text}");
    assert_eq!(app.text(), "");
}

#[test]
fn small_and_large_terminals_and_resizing() {
    let seg = segment("sizes", 1024);
    let mut app = App::new(seg);
    type_text(
        &mut app,
        "你好, a line long enough to wrap in a narrow terminal window",
    );
    for (w, h) in [(80, 24), (20, 8), (10, 3), (1, 1), (200, 60), (80, 24)] {
        let s = screen(&mut app, w, h);
        assert_eq!(s.len(), h as usize);
    }
    app.handle(ctrl('r'));
    for (w, h) in [(30, 10), (80, 24)] {
        screen(&mut app, w, h); // with the question shown
    }
}
