//! The shmbox demo: the FoxPro sample's form as a terminal app.
//!
//! An edit box and two buttons, "Read from shared memory" and "Write to
//! shared memory", over a named segment (by default `MYAPPSHAREDMEMORY`,
//! 1024 bytes, as in the sample). Run it in two or more terminals and pass
//! text between them; turn on "live" to have the text follow other
//! processes' writes as they happen.
//!
//! Nothing here polls. One thread blocks reading terminal events, another
//! sleeps in the segment's change notification (waking only to see whether
//! the demo quits), and the main thread sleeps on a channel that both feed.

mod app;
mod ui;

use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};

use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{
    self, DisableBracketedPaste, DisableMouseCapture, EnableBracketedPaste, EnableMouseCapture,
};
use ratatui::crossterm::execute;
use shmbox::{AnySegment, Location};

pub use app::{App, Areas, Confirm, Kind, Load, Message, SegmentView, Step, decode, fit};
pub use ui::render;

pub use shmbox_form::{DEFAULT_NAME, DEFAULT_SIZE, open, open_at};

/// Why the demo stopped.
#[derive(Debug)]
pub enum DemoError {
    /// Opening the segment failed.
    Segment(shmbox::Error),
    /// The terminal failed, or is not one.
    Terminal(io::Error),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Segment(e) => e.fmt(f),
            DemoError::Terminal(e) => write!(f, "terminal: {e}"),
        }
    }
}

impl std::error::Error for DemoError {}

impl From<shmbox::Error> for DemoError {
    fn from(e: shmbox::Error) -> DemoError {
        DemoError::Segment(e)
    }
}

impl From<io::Error> for DemoError {
    fn from(e: io::Error) -> DemoError {
        DemoError::Terminal(e)
    }
}

/// What wakes the main thread.
enum Wake {
    Terminal(event::Event),
    Changed(u64),
    WatchFailed(shmbox::Error),
    InputFailed(io::Error),
    /// From the signal thread, which only Unix has (on Windows, Ctrl-C in
    /// raw mode is a key press).
    #[cfg_attr(not(unix), allow(dead_code))]
    Quit,
}

/// Runs the demo on the segment `name` until the user quits.
pub fn run(name: &str, size: Option<usize>) -> Result<(), DemoError> {
    run_at(&Location::Local, name, size)
}

/// Runs the demo on the segment `name` at `location` (this machine, or a
/// Redis server that demos on other machines share) until the user quits.
pub fn run_at(location: &Location, name: &str, size: Option<usize>) -> Result<(), DemoError> {
    if !io::stdout().is_terminal() || !io::stdin().is_terminal() {
        return Err(DemoError::Terminal(io::Error::other(
            "the demo needs a terminal on standard input and output",
        )));
    }
    let segment = Arc::new(open_at(location, name, size)?);
    let (tx, rx) = mpsc::channel();
    // Dropped on every way out, a panic's too: its handle on the segment is
    // closed before the process exits, and the last demo removes the segment.
    let _watcher = watch_changes(Arc::clone(&segment), tx.clone());
    quit_on_signals(tx.clone())?;

    let mut terminal = start_terminal()?;
    read_terminal_events(tx);
    let result = event_loop(&mut terminal, App::new(segment), &rx);
    stop_terminal();
    result
}

/// Set to `panic` to make the demo panic after its first frame: the
/// end-to-end test uses it to check that a panic restores the terminal.
const FAULT_ENV: &str = "SHMBOX_DEMO_FAULT";

fn event_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    rx: &mpsc::Receiver<Wake>,
) -> Result<(), DemoError> {
    let inject_panic = std::env::var_os(FAULT_ENV).is_some_and(|v| v == "panic");
    loop {
        terminal.draw(|frame| render(frame, &mut app))?;
        assert!(!inject_panic, "fault injected by {FAULT_ENV}");
        let step = match rx.recv() {
            Ok(Wake::Terminal(event)) => app.handle(event),
            Ok(Wake::Changed(generation)) => {
                app.on_change(generation);
                Step::Continue
            }
            Ok(Wake::WatchFailed(e)) => {
                app.on_watch_error(&e);
                Step::Continue
            }
            Ok(Wake::InputFailed(e)) => return Err(DemoError::Terminal(e)),
            Ok(Wake::Quit) | Err(_) => Step::Quit,
        };
        match step {
            Step::Continue => {}
            Step::Quit => return Ok(()),
            Step::WaitForLock => {
                // Show that we wait before blocking on the lock.
                terminal.draw(|frame| render(frame, &mut app))?;
                app.finish_pending();
            }
        }
    }
}

/// Reports each commit, from the segment's change notification.
fn watch_changes(segment: Arc<AnySegment>, tx: Sender<Wake>) -> shmbox_form::Watcher {
    shmbox_form::watch_changes(segment, move |change| {
        let wake = match change {
            Ok(generation) => Wake::Changed(generation),
            Err(e) => Wake::WatchFailed(e),
        };
        tx.send(wake).is_ok()
    })
}

/// Blocks reading terminal events and passes them on.
fn read_terminal_events(tx: Sender<Wake>) {
    std::thread::spawn(move || {
        loop {
            let wake = match event::read() {
                Ok(event) => Wake::Terminal(event),
                Err(e) => Wake::InputFailed(e),
            };
            let failed = matches!(wake, Wake::InputFailed(_));
            if tx.send(wake).is_err() || failed {
                return;
            }
        }
    });
}

/// SIGTERM, SIGHUP and SIGINT end the demo cleanly instead of leaving the
/// terminal in raw mode.
#[cfg(unix)]
fn quit_on_signals(tx: Sender<Wake>) -> io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let _ = tx.send(Wake::Quit);
        }
    });
    Ok(())
}

#[cfg(not(unix))]
fn quit_on_signals(_: Sender<Wake>) -> io::Result<()> {
    Ok(())
}

/// Raw mode, the alternate screen, mouse and bracketed paste; and a panic
/// hook that undoes all of it before the message is printed.
fn start_terminal() -> io::Result<DefaultTerminal> {
    let terminal = ratatui::try_init()?;
    // ratatui's hook restores raw mode and the screen; ours adds the rest.
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste);
        previous(info);
    }));
    if let Err(e) = execute!(io::stdout(), EnableMouseCapture, EnableBracketedPaste) {
        stop_terminal();
        return Err(e);
    }
    Ok(terminal)
}

fn stop_terminal() {
    let _ = execute!(io::stdout(), DisableMouseCapture, DisableBracketedPaste);
    ratatui::restore();
}
