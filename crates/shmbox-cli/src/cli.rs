//! The command line, declared with clap.

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use shmbox::Location;

use crate::size::parse_usize;

#[derive(Debug, Parser)]
#[command(
    name = "shmbox",
    version,
    about = "Create, write, read, watch, lock, inspect and remove named shared-memory segments.",
    long_about = "Create, write, read, watch, lock, inspect and remove named shared-memory \
                  segments (see https://docs.rs/shmbox). Sizes and offsets take units: \
                  4096, 4K, 4KiB, 1M, 1MiB (powers of 1024); 4KB, 1MB (powers of 1000).",
    after_help = "Examples:\n  \
        shmbox create orders --size 4K\n  \
        echo hello | shmbox write orders\n  \
        shmbox read orders\n  \
        shmbox watch orders --count 1 --timeout 10\n  \
        shmbox lock orders -- ./update-orders.sh\n  \
        shmbox info orders --json\n  \
        shmbox rm orders\n  \
        shmbox --url redis://cache.example:6379 demo    # across machines\n  \
        SHMBOX_URL=redis://127.0.0.1:6379?lease=2 shmbox watch orders"
)]
pub struct Cli {
    /// Where the segments are: a redis:// URL, for a Redis server that
    /// processes on several machines share (see docs/REMOTE.md), or
    /// "local" for this machine's shared memory (the default).
    #[arg(
        long,
        global = true,
        env = "SHMBOX_URL",
        value_name = "URL",
        default_value = "local",
        hide_env_values = true,
        value_parser = parse_location
    )]
    pub url: Location,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a persistent segment (an error if the name exists).
    #[command(after_help = "Examples:\n  \
        shmbox create orders --size 4K\n  \
        shmbox create shared-with-group --size 1MiB --mode 660")]
    Create {
        /// The segment's name.
        name: String,
        /// Its size: bytes, or with a unit (4K, 1MiB, ...).
        #[arg(long, value_name = "BYTES", value_parser = parse_usize)]
        size: usize,
        /// Permission bits, in octal.
        #[arg(long, value_name = "OCTAL", default_value = "600", value_parser = parse_mode)]
        mode: u32,
    },

    /// Write TEXT, or standard input, at an offset.
    #[command(after_help = "Examples:\n  \
        shmbox write orders 'hello'\n  \
        shmbox write orders --offset 1K 'second record'\n  \
        shmbox write orders < image.png\n  \
        shmbox write new-segment --create 4K 'made if missing'\n  \
        shmbox write busy-segment --timeout 30 'waits up to 30 s for the lock'")]
    Write {
        /// The segment's name.
        name: String,
        /// What to write; standard input (binary-safe) when absent.
        text: Option<OsString>,
        /// Where to start writing.
        #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_usize)]
        offset: usize,
        /// Create a persistent segment of this size if none exists.
        #[arg(long, value_name = "SIZE", value_parser = parse_usize)]
        create: Option<usize>,
        /// How long to wait for the lock, in seconds.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
        timeout: Duration,
    },

    /// Print a segment's bytes.
    #[command(after_help = "Examples:\n  \
        shmbox read orders\n  \
        shmbox read orders --offset 16 --len 32 --format hex\n  \
        shmbox read orders --format raw > orders.bin\n  \
        shmbox read busy-segment --timeout 30\n\n\
        Reads without the lock, and never prints a copy that mixes two writes:\n\
        while a writer is mid-write it waits (up to --timeout) for the commit.")]
    Read {
        /// The segment's name.
        name: String,
        /// Where to start reading.
        #[arg(long, value_name = "BYTES", default_value = "0", value_parser = parse_usize)]
        offset: usize,
        /// How many bytes to read (default: to the end).
        #[arg(long, value_name = "BYTES", value_parser = parse_usize)]
        len: Option<usize>,
        /// How long to wait for a write in progress to finish, in seconds.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
        timeout: Duration,
        #[command(flatten)]
        format: FormatArg,
    },

    /// Print the content each time a process commits a write.
    #[command(after_help = "Examples:\n  \
        shmbox watch orders\n  \
        shmbox watch orders --count 1 --timeout 10   # wait up to 10 s for the next write\n  \
        shmbox watch orders --format base64\n\n\
        Writes that come faster than they can be printed are coalesced: the\n\
        generation shows how many were committed. --count counts commits.")]
    Watch {
        /// The segment's name.
        name: String,
        /// Stop after this many committed writes.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
        timeout: Option<Duration>,
        #[command(flatten)]
        format: FormatArg,
    },

    /// Describe a segment: size, lifetime, generation, lock, last writer.
    #[command(after_help = "Examples:\n  \
        shmbox info orders\n  \
        shmbox info orders --json | jq .generation")]
    Info {
        /// The segment's name.
        name: String,
        /// Print JSON (snake_case keys).
        #[arg(long)]
        json: bool,
    },

    /// List the segments on this machine (or on the --url server).
    #[command(after_help = "Examples:\n  \
        shmbox list\n  \
        shmbox list --json | jq -r '.[].name'")]
    List {
        /// Print JSON (an array of what `info --json` prints).
        #[arg(long)]
        json: bool,
    },

    /// Remove a segment.
    #[command(after_help = "Examples:\n  \
        shmbox rm orders\n\n\
        A segment created with the until-last-close lifetime (as the demo does)\n\
        cannot be removed while processes have it open: it disappears when the\n\
        last of them closes it.")]
    Rm {
        /// The segment's name.
        name: String,
    },

    /// Remove the until-last-close segments whose holders all died.
    #[command(after_help = "Examples:\n  \
        shmbox gc\n  \
        shmbox gc --watch 1      # a service: every second, until stopped\n\n\
        An until-last-close segment disappears when its last holder closes it.\n\
        When its last holders are killed instead, nobody is left to remove it,\n\
        and shmbox starts no helper process to watch for that: the next shmbox\n\
        call that looks (open, create, info, list, gc) removes it. gc does it\n\
        now; gc --watch keeps doing it, for machines where memory must come\n\
        back promptly. A segment is removed only when the kernel proves that\n\
        nobody holds it.")]
    Gc {
        /// Keep going: reclaim every SECS seconds until interrupted.
        #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
        watch: Option<Duration>,
    },

    /// Run a command while holding a segment's lock, like flock(1).
    #[command(after_help = "Examples:\n  \
        shmbox lock orders -- ./update-orders.sh\n  \
        shmbox lock orders --timeout 0.5 -- sh -c 'shmbox read orders --format raw > snapshot.bin'\n\n\
        Exits with the command's status (128+N if a signal N killed it), or 1 if\n\
        the lock stayed busy for the timeout. If this process is killed, the\n\
        command is killed too, and the lock passes to the next locker at once.")]
    Lock {
        /// The segment's name.
        name: String,
        /// How long to wait for the lock, in seconds.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = parse_seconds)]
        timeout: Duration,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },

    /// The FoxPro sample's form in the terminal: edit text, then Read or Write it.
    #[command(after_help = "Examples:\n  \
        shmbox demo                     # in two terminals: type in one, Write; Read in the other\n  \
        shmbox demo orders --size 4K\n\n\
        Keys: Ctrl-R read, Ctrl-W write, Ctrl-L live (follow others' writes), Ctrl-Q quit;\n\
        or click the buttons. The segment lives until the last demo using it exits.")]
    Demo {
        /// The segment's name.
        #[arg(default_value = "MYAPPSHAREDMEMORY")]
        name: String,
        /// Its size, if the demo creates it (default 1024; an existing
        /// segment keeps its own size unless this is given).
        #[arg(long, value_name = "BYTES", value_parser = parse_usize)]
        size: Option<usize>,
    },

    /// Measure shmbox against its peers and the hardware; write a report.
    #[command(after_help = "Examples:\n  \
        cargo run --release -p shmbox-cli --features bench -- bench          # 5 rounds: about 8 minutes\n  \
        cargo run --release -p shmbox-cli --features bench -- bench --quick  # seconds: a check\n\n\
        cargo run --release -p shmbox-cli --features bench -- bench --remote # over Redis\n\n\
        Writes docs/BENCHMARKS.md (or --output) and its plots in bench/ beside it.\n\
        Needs a build with the `bench` feature.")]
    Bench {
        /// A few seconds in all: checks the harness, measures little.
        #[arg(long)]
        quick: bool,
        /// Measure segments on a Redis server (started for the run) beside
        /// raw round trips, instead of the local scenarios.
        #[arg(long)]
        remote: bool,
        /// Full rounds of every scenario; each target is judged by the
        /// median of its ratio over them (--quick runs one).
        #[arg(long, value_name = "N", default_value = "5", value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
        /// Where to write the Markdown report; plots go in bench/ beside it
        /// (default docs/BENCHMARKS.md, or docs/BENCHMARKS-remote.md with
        /// --remote).
        #[arg(long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },

    /// A benchmark's helper process (internal).
    #[command(hide = true)]
    BenchChild {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },

    /// Print shell completions.
    #[command(after_help = "Examples:\n  \
        shmbox completions bash > /etc/bash_completion.d/shmbox\n  \
        shmbox completions zsh > \"${fpath[1]}/_shmbox\"\n  \
        shmbox completions fish > ~/.config/fish/completions/shmbox.fish")]
    Completions {
        /// The shell.
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// UTF-8, invalid bytes replaced, trailing NUL bytes trimmed.
    Text,
    /// A dump like xxd's.
    Hex,
    /// The exact bytes.
    Raw,
    /// Base64 (standard alphabet, padded).
    Base64,
}

#[derive(Debug, Args)]
pub struct FormatArg {
    /// How to print the bytes.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix("0o").unwrap_or(text);
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| format!("{text:?} is not an octal mode like 600 or 0640"))
}

fn parse_location(text: &str) -> Result<Location, String> {
    Location::parse(text).map_err(|e| e.to_string())
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{text:?} is not a number of seconds like 5 or 0.25"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn modes_and_seconds() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o660"), Ok(0o660));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("77777").is_err());
        assert_eq!(parse_seconds("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
