//! The `shmbox` command over a Redis server (`--url`, `SHMBOX_URL`): every
//! subcommand, `watch` across processes, `lock` killed with SIGKILL and
//! recovered after its lease, and the errors a bad URL or a missing server
//! give. Each test starts its own redis-server (see `common`).
#![cfg(unix)]

use std::io::Read as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

use shmbox_testkit::RedisServer;

const SHMBOX: &str = env!("CARGO_BIN_EXE_shmbox");

fn shmbox(url: &str) -> Command {
    let mut cmd = Command::new(SHMBOX);
    cmd.timeout(Duration::from_secs(30)).args(["--url", url]);
    cmd
}

fn spawn(url: &str, args: &[&str]) -> Child {
    std::process::Command::new(SHMBOX)
        .args(["--url", url])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn name(tag: &str) -> String {
    format!("test-cli-remote-{tag}-{}", std::process::id())
}

#[test]
fn every_subcommand_works_over_a_url() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = format!("{}?lease=1", redis.url());
    let name = name("all");
    shmbox(&url)
        .args(["create", &name, "--size", "64"])
        .assert()
        .success()
        .stderr(contains(format!(
            "created \"{name}\" at redis://127.0.0.1:{}",
            redis.port()
        )));
    shmbox(&url)
        .args(["write", &name, "你好 remote"])
        .assert()
        .success()
        .stderr(contains("wrote 13 bytes at offset 0").and(contains("(generation 1)")));
    shmbox(&url)
        .args(["read", &name])
        .assert()
        .success()
        .stdout("你好 remote\n");
    shmbox(&url)
        .args(["write", &name, "--offset", "60", "overflow"])
        .assert()
        .success()
        .stderr(contains("only 4 of 8 bytes fit"));
    shmbox(&url)
        .args(["read", &name, "--offset", "60", "--format", "raw"])
        .assert()
        .success()
        .stdout("over");
    // The environment variable names the server as well as --url.
    Command::new(SHMBOX)
        .env("SHMBOX_URL", &url)
        .args(["info", &name])
        .timeout(Duration::from_secs(30))
        .assert()
        .success()
        .stdout(
            contains("generation:     2")
                .and(contains("lifetime:       persistent"))
                .and(contains(format!(
                    "location:       redis://127.0.0.1:{}",
                    redis.port()
                ))),
        );
    let json = shmbox(&url)
        .args(["info", &name, "--json"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(info["size"], 64);
    assert_eq!(info["remote"]["open_handles"], 0);
    assert!(info["remote"]["last_writer_host"].is_string());
    shmbox(&url)
        .args(["list"])
        .assert()
        .success()
        .stdout(contains(name.as_str()));
    shmbox(&url)
        .args(["lock", &name, "--", "sh", "-c", "exit 3"])
        .assert()
        .code(3);
    shmbox(&url).args(["gc"]).assert().success();
    shmbox(&url)
        .args(["rm", &name])
        .assert()
        .success()
        .stderr(contains("removed"));
    shmbox(&url)
        .args(["read", &name])
        .assert()
        .code(1)
        .stderr(contains(format!("no segment named \"{name}\"")));
    assert_eq!(redis.cli(&["KEYS", "*"]), "");
}

#[test]
fn watch_sees_a_write_from_another_process() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = format!("{}?lease=1", redis.url());
    let name = name("watch");
    shmbox(&url)
        .args(["create", &name, "--size", "16"])
        .assert()
        .success();
    let mut watch = spawn(&url, &["watch", &name, "--count", "1", "--timeout", "20"]);
    // Written until the watcher, once subscribed, sees a commit and exits.
    let deadline = Instant::now() + Duration::from_secs(20);
    while watch.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "watch saw nothing");
        shmbox(&url)
            .args(["write", &name, "tick"])
            .assert()
            .success();
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut out = String::new();
    watch
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(watch.wait().unwrap().success());
    assert!(
        out.starts_with("[generation ") && out.contains("] tick"),
        "{out}"
    );
    assert!(out.contains(" on "), "the writer's host is named: {out}");
}

#[test]
fn a_killed_lock_holder_is_taken_over_after_its_lease() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = format!("{}?lease=1", redis.url());
    let name = name("killed");
    shmbox(&url)
        .args(["create", &name, "--size", "16"])
        .assert()
        .success();
    let mut holder = spawn(&url, &["lock", &name, "--", "sleep", "60"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !redis
        .cli(&["GET", &format!("shmbox:{{{name}}}:lease")])
        .chars()
        .any(|c| c.is_ascii_digit())
    {
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(10));
    }
    // Busy meanwhile.
    shmbox(&url)
        .args(["write", &name, "--timeout", "0.2", "x"])
        .assert()
        .code(1)
        .stderr(contains("timed out after 0.2s waiting for the lock"));
    let pid = holder.id();
    holder.kill().unwrap();
    holder.wait().unwrap();
    // Its 1 s lease runs out; the next writer takes over, and says from whom.
    shmbox(&url)
        .args(["write", &name, "--timeout", "10", "after"])
        .assert()
        .success()
        .stderr(contains(format!(
            "recovered the lock of \"{name}\" from pid {pid} on "
        )));
    shmbox(&url).args(["rm", &name]).assert().success();
}

#[test]
fn bad_urls_and_missing_servers_are_clear_errors() {
    shmbox("http://example.com")
        .args(["list"])
        .assert()
        .code(2)
        .stderr(contains("redis:// or rediss://"));
    shmbox("redis://h?lease=soon")
        .args(["list"])
        .assert()
        .code(2)
        .stderr(contains("lease must be a number of seconds"));
    // A port nothing listens on: refused, at once, naming the URL without
    // its password.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    shmbox(&format!("redis://user:hunter2@127.0.0.1:{port}"))
        .args(["read", "anything"])
        .assert()
        .code(1)
        .stderr(
            contains(format!("at redis://user:***@127.0.0.1:{port} failed"))
                .and(contains("refused"))
                .and(contains("hunter2").not()),
        );
}
