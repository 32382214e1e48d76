//! The desktop demo, headless: egui_kittest drives two windows' UIs (found
//! by their accessible labels, as a screen reader would) over one segment.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use shmbox::SegmentOptions;
use shmbox_gui::{DemoApp, EDITOR_LABEL, LIVE_LABEL, READ_LABEL, WRITE_LABEL};

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    #[allow(clippy::disallowed_types)] // a test counter, not shared memory
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "test-gui-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A window on segment `name` (opened or created, `size` bytes).
fn window(name: &str, size: usize) -> Harness<'static, DemoApp> {
    window_at(&shmbox::Location::Local, name, size)
}

/// A window on segment `name` at `location`.
fn window_at(location: &shmbox::Location, name: &str, size: usize) -> Harness<'static, DemoApp> {
    let segment = SegmentOptions::new()
        .open_or_create_at(location, name, size)
        .unwrap();
    let app = DemoApp::new(Arc::new(segment));
    let mut harness = Harness::builder()
        .with_size(egui::vec2(560.0, 300.0))
        // Chinese glyphs come from a system font, which a fresh machine may
        // lack; these tests check text through the app's state, and `.ci/gui`
        // checks the drawing (with the font installed, in its screenshot).
        .allow_missing_glyphs()
        .build_ui_state(|ui, app: &mut DemoApp| app.ui(ui), app);
    harness.run_ok();
    harness
}

fn type_into(harness: &mut Harness<'_, DemoApp>, text: &str) {
    harness.get_by_label(EDITOR_LABEL).focus();
    harness.run_ok();
    harness.get_by_label(EDITOR_LABEL).type_text(text);
    harness.run_ok();
}

fn click(harness: &mut Harness<'_, DemoApp>, label: &str) {
    harness.get_by_label(label).click();
    harness.run_ok();
}

fn status(harness: &Harness<'_, DemoApp>) -> String {
    harness
        .state()
        .form()
        .message()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

/// Steps `harness` until `done` holds; the watcher thread wakes the UI
/// through the context, so a few frames after a commit it must.
fn until(harness: &mut Harness<'_, DemoApp>, what: &str, done: impl Fn(&DemoApp) -> bool) {
    let started = Instant::now();
    while !done(harness.state()) {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: not after 10 s; text {:?}, status {:?}",
            harness.state().text(),
            status(harness)
        );
        std::thread::sleep(Duration::from_millis(5));
        harness.step();
    }
}

#[test]
fn the_buttons_and_the_edit_box_have_accessible_labels() {
    let name = unique("labels");
    let harness = window(&name, 64);
    for label in [READ_LABEL, WRITE_LABEL, LIVE_LABEL, EDITOR_LABEL] {
        harness.get_by_label(label);
    }
    // Found by role and label, or the query panics.
    use egui::accesskit::Role;
    harness.get_by_role_and_label(Role::Button, READ_LABEL);
    harness.get_by_role_and_label(Role::Button, WRITE_LABEL);
    harness.get_by_role_and_label(Role::CheckBox, LIVE_LABEL);
    harness.get_by_role_and_label(Role::MultilineTextInput, EDITOR_LABEL);
}

#[test]
fn text_written_in_one_window_is_read_in_another() {
    let name = unique("exchange");
    let mut a = window(&name, 1024);
    let mut b = window(&name, 1024);
    type_into(&mut a, "你好 from window A");
    click(&mut a, WRITE_LABEL);
    assert!(
        status(&a).starts_with("Wrote 20 bytes and 1004 zero bytes"),
        "{}",
        status(&a)
    );
    assert_eq!(b.state().text(), "");
    click(&mut b, READ_LABEL);
    assert_eq!(b.state().text(), "你好 from window A");
    assert!(status(&b).starts_with("Read 20 bytes"), "{}", status(&b));
    // And back.
    type_into(&mut b, ", and B");
    click(&mut b, WRITE_LABEL);
    click(&mut a, READ_LABEL);
    assert_eq!(a.state().text(), "你好 from window A, and B");
}

#[test]
fn write_pads_with_zeros_and_never_splits_a_character() {
    let name = unique("fit");
    let mut a = window(&name, 8);
    type_into(&mut a, "你好你好"); // 12 bytes into 8
    click(&mut a, WRITE_LABEL);
    let bytes = a.state().form().segment().read(0, 8).unwrap();
    assert_eq!(bytes, "你好\0\0".as_bytes());
    assert!(status(&a).contains("were cut off"), "{}", status(&a));
}

#[test]
fn live_follows_another_window_without_a_key_press() {
    let name = unique("live");
    let mut a = window(&name, 64);
    let mut b = window(&name, 64);
    click(&mut b, LIVE_LABEL);
    assert!(b.state().form().live());
    type_into(&mut a, "pushed live");
    click(&mut a, WRITE_LABEL);
    until(&mut b, "B follows A", |app| app.text() == "pushed live");
}

/// The same, with the segment on a Redis server (as `shmbox-gui --url`):
/// the windows could be on two machines.
#[cfg(target_os = "linux")]
#[test]
fn live_follows_another_window_over_redis() {
    let Some(redis) = shmbox_testkit::RedisServer::start() else {
        return;
    };
    let at = shmbox::Location::parse(&redis.url()).unwrap();
    let name = unique("live-remote");
    let mut a = window_at(&at, &name, 64);
    let mut b = window_at(&at, &name, 64);
    click(&mut b, LIVE_LABEL);
    type_into(&mut a, "pushed over redis");
    click(&mut a, WRITE_LABEL);
    until(&mut b, "B follows A through the server", |app| {
        app.text() == "pushed over redis"
    });
    assert_eq!(
        redis.cli(&["HGET", &format!("shmbox:{{{name}}}:meta"), "gen"]),
        "1"
    );
    assert!(!std::path::Path::new(&format!("/dev/shm/shmbox.{name}")).exists());
}

#[test]
fn live_keeps_unsaved_edits() {
    let name = unique("live-dirty");
    let mut a = window(&name, 64);
    let mut b = window(&name, 64);
    click(&mut b, LIVE_LABEL);
    type_into(&mut b, "mine, unsaved");
    type_into(&mut a, "theirs");
    click(&mut a, WRITE_LABEL);
    until(&mut b, "B hears of the write", |app| {
        app.form()
            .message()
            .is_some_and(|m| m.text.contains("your unsaved edits are kept"))
    });
    assert_eq!(b.state().text(), "mine, unsaved");
}

#[test]
fn read_over_unsaved_edits_asks_first() {
    let name = unique("confirm");
    let mut a = window(&name, 64);
    let mut b = window(&name, 64);
    type_into(&mut a, "from A");
    click(&mut a, WRITE_LABEL);
    type_into(&mut b, "B's draft");
    click(&mut b, READ_LABEL);
    assert_eq!(b.state().text(), "B's draft", "nothing replaced yet");
    click(&mut b, "Keep my edits");
    assert_eq!(b.state().text(), "B's draft");
    assert!(status(&b).contains("Kept your edits"), "{}", status(&b));
    click(&mut b, READ_LABEL);
    click(&mut b, "Discard my edits and read");
    assert_eq!(b.state().text(), "from A");
}

#[test]
fn write_waits_for_a_busy_lock_and_says_so() {
    let name = unique("busy");
    let mut a = window(&name, 64);
    let holder = SegmentOptions::new().open(&name).unwrap();
    type_into(&mut a, "patient");
    let (locked, is_locked) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        // The lock is released by the thread that took it.
        s.spawn(|| {
            let guard = holder.lock().unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(150));
            drop(guard);
        });
        is_locked.recv().unwrap();
        a.get_by_label(WRITE_LABEL).click();
        a.step();
        assert!(
            status(&a).starts_with("Waiting for the lock: pid"),
            "{}",
            status(&a)
        );
        // The next frame waits for the lock, then writes.
        a.run_ok();
    });
    assert!(status(&a).contains("Waited"), "{}", status(&a));
    assert_eq!(holder.read(0, 7).unwrap(), b"patient");
}
