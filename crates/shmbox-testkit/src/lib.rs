//! Test support shared by shmbox's crates: a `redis-server` of the test's
//! own, on 127.0.0.1 on a free port, without persistence. Linux only (it is
//! empty elsewhere), as are the tests that use it.
#![cfg(target_os = "linux")]
#![allow(unsafe_code)] // prctl between fork and exec

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server of the test's own, killed when dropped (and when the
/// thread that started it ends, even if the test process is killed).
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts one, or returns `None` after printing SKIPPED if
    /// `redis-server` is not installed, unless `SHMBOX_REQUIRE_REDIS` is set
    /// (as `.ci/run` does): then that panics.
    pub fn start() -> Option<RedisServer> {
        RedisServer::start_with(&[])
    }

    /// As [`start`](RedisServer::start), with more server arguments
    /// (`--requirepass`, say).
    pub fn start_with(args: &[&str]) -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            assert!(
                std::env::var_os("SHMBOX_REQUIRE_REDIS").is_none(),
                "redis-server is not installed, and SHMBOX_REQUIRE_REDIS says it must be"
            );
            eprintln!("SKIPPED: redis-server is not installed (apt-get install redis-server)");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("shmbox-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for redis-server");
        let mut server = RedisServer {
            port,
            child: None,
            dir,
            args: args.iter().map(|s| s.to_string()).collect(),
        };
        server.launch();
        Some(server)
    }

    /// Starts the server (again, after [`kill`](RedisServer::kill)) on the
    /// same port, and waits until it accepts connections.
    pub fn launch(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl takes plain integers and is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(command.spawn().expect("start redis-server"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills the server (SIGKILL): what it held is lost.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its pid, while it runs.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A raw command, through redis-cli; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(at) = self.args.iter().position(|a| a == "--requirepass") {
            command.env("REDISCLI_AUTH", &self.args[at + 1]);
        }
        let out = command
            .args(args)
            .stderr(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
