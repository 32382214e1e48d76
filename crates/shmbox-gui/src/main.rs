//! `shmbox-gui [NAME] [--size BYTES]`: the demo in a desktop window.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use eframe::egui;
use shmbox_gui::{DEFAULT_NAME, DemoApp};

/// The FoxPro sample's form in a window: edit text, then Read or Write it.
/// Run it two or more times (or beside `shmbox demo`) to exchange text.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The segment's name.
    #[arg(default_value = DEFAULT_NAME)]
    name: String,
    /// Its size in bytes, if this window creates it (default 1024; an
    /// existing segment keeps its own size unless this is given).
    #[arg(long)]
    size: Option<usize>,
    /// Where the segment is: a redis:// URL, for a Redis server that windows
    /// on several machines share, or "local" (this machine, the default).
    #[arg(long, env = "SHMBOX_URL", default_value = "local", value_name = "URL", hide_env_values = true, value_parser = parse_location)]
    url: shmbox::Location,
    /// Write the edit box's text and the buttons' places to this file after
    /// each change, for scripts that drive the window (see `DemoApp::dump_to`).
    #[arg(long, hide = true, env = "SHMBOX_GUI_DUMP")]
    dump: Option<PathBuf>,
}

fn parse_location(text: &str) -> Result<shmbox::Location, String> {
    shmbox::Location::parse(text).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    // An application may take SIGBUS over: a segment cut short under the
    // window becomes an error shown in it, not a crash.
    if let Err(e) = shmbox::install_sigbus_handler() {
        eprintln!("shmbox-gui: warning: {e}");
    }
    let segment = match shmbox_gui::open_at(&args.url, &args.name, args.size) {
        Ok(segment) => Arc::new(segment),
        Err(e) => {
            eprintln!("shmbox-gui: {e}");
            return ExitCode::FAILURE;
        }
    };
    let title = if args.url.is_local() {
        format!("shmbox: {} (pid {})", args.name, std::process::id())
    } else {
        format!(
            "shmbox: {} at {} (pid {})",
            args.name,
            args.url,
            std::process::id()
        )
    };
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title(&title)
            // The sample's form is 460 × 200; the status line needs a little more.
            .with_inner_size([560.0, 300.0])
            .with_min_inner_size([460.0, 200.0]),
        ..Default::default()
    };
    let mut app = DemoApp::new(segment);
    if let Some(path) = args.dump {
        app = app.dump_to(path);
    }
    let started = |cc: &eframe::CreationContext<'_>| {
        close_on_signals(cc.egui_ctx.clone());
        Ok(Box::new(app) as Box<dyn eframe::App>)
    };
    match eframe::run_native(&title, options, Box::new(started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmbox-gui: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP close the window the way its close button
/// does: the app is dropped, its handle on the segment closed, and the last
/// window removes the segment. (Killed outright, a window leaves that to the
/// next shmbox call, which reclaims segments whose holders all died.)
#[cfg(unix)]
fn close_on_signals(ctx: egui::Context) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
        eprintln!(
            "shmbox-gui: warning: cannot watch for SIGTERM; a signal will end the window abruptly"
        );
        return;
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            ctx.request_repaint();
        }
    });
}

#[cfg(not(unix))]
fn close_on_signals(_: egui::Context) {}
