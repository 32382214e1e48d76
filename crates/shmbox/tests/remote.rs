//! The remote backend against a real `redis-server`, started by this test
//! on 127.0.0.1 on a free port, without persistence: processes exchanging
//! data, the lock as a lease (a SIGKILLed holder, a SIGSTOPped one and
//! fencing), notification, the until-last-close lifetime, corrupt keys,
//! authentication, and a server that dies and comes back.
//!
//! Without `redis-server` on PATH the tests print SKIPPED, unless
//! SHMBOX_REQUIRE_REDIS=1 (as in CI), which makes that a failure. Helper
//! processes are this binary again (see `common`).
#![allow(unsafe_code)]

mod common;

#[cfg(not(all(target_os = "linux", feature = "redis")))]
fn main() {
    println!("remote: SKIPPED (needs Linux and shmbox's `redis` feature)");
}

#[cfg(all(target_os = "linux", feature = "redis"))]
fn main() {
    linux::main();
}

#[cfg(all(target_os = "linux", feature = "redis"))]
mod linux {
    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use libtest_mimic::Arguments;
    use shmbox::{
        AnySegment, Error, Lifetime, Location, LockState, RedisLocation, SegmentOptions, info_at,
        list_at, remove_at,
    };

    use shmbox_testkit::RedisServer as Server;

    use crate::common::{self, Helper, unique_name, wait_until};

    const SECOND: Duration = Duration::from_secs(1);

    /// A redis-server of our own (see shmbox-testkit); present, since
    /// `main` checked.
    fn server(args: &[&str]) -> Server {
        Server::start_with(args).expect("redis-server was found by main")
    }

    /// The server the tests share (each test uses names of its own),
    /// started by `main` and killed when the tests end.
    static SHARED: Mutex<Option<Server>> = Mutex::new(None);
    static SHARED_URL: OnceLock<String> = OnceLock::new();

    fn shared_url() -> &'static str {
        SHARED_URL.get().expect("the shared server runs")
    }

    /// A raw command on the shared server.
    fn shared_cli(args: &[&str]) -> String {
        SHARED
            .lock()
            .unwrap()
            .as_ref()
            .expect("the shared server runs")
            .cli(args)
    }

    /// The shared server's location, with a 1 s lease, so that recovery
    /// tests take seconds.
    fn at() -> Location {
        Location::parse(&format!("{}?lease=1&timeout=2", shared_url())).unwrap()
    }

    fn url() -> String {
        format!("{}?lease=1&timeout=2", shared_url())
    }

    fn open(name: &str) -> AnySegment {
        SegmentOptions::new().open_at(&at(), name).unwrap()
    }

    fn create(name: &str, size: usize) -> AnySegment {
        SegmentOptions::new().create_at(&at(), name, size).unwrap()
    }

    fn persistent(name: &str, size: usize) -> AnySegment {
        SegmentOptions::new()
            .lifetime(Lifetime::Persistent)
            .create_at(&at(), name, size)
            .unwrap()
    }

    /// Removes a persistent segment when dropped.
    struct Removed(String);

    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = remove_at(&at(), &self.0);
        }
    }

    macro_rules! tests {
        ($($test:ident),* $(,)?) => {
            &[$((stringify!($test), $test as fn())),*]
        };
    }

    pub(crate) fn main() {
        if let Ok(role) = std::env::var(common::ROLE_ENV) {
            common::helper_setup();
            let args: Vec<String> = std::env::args().skip(1).collect();
            run_role(&role, &args);
            std::process::exit(0);
        }
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            if std::env::var("SHMBOX_REQUIRE_REDIS").as_deref() == Ok("1") {
                eprintln!("remote: redis-server is missing, and SHMBOX_REQUIRE_REDIS=1");
                std::process::exit(1);
            }
            println!("remote: SKIPPED (no redis-server on PATH; apt-get install redis-server)");
            return;
        }
        let mut args = Arguments::from_args();
        args.test_threads.get_or_insert(1);
        let tests: &[(&str, fn())] = tests![
            two_processes_exchange_data,
            writes_and_reads_are_clamped,
            sizes_and_names_are_checked,
            a_lock_held_elsewhere_times_out,
            a_waiting_locker_is_woken_by_the_release,
            a_killed_holder_is_taken_over_after_its_lease,
            a_paused_holder_loses_its_lease_and_nothing_it_sends_lands,
            guard_reads_see_its_own_writes,
            wait_for_change_wakes_across_processes,
            wait_for_change_honours_its_timeout,
            until_last_close_goes_with_the_last_close,
            until_last_close_goes_after_every_holder_is_killed,
            persistent_stays_until_removed_and_in_use_is_busy,
            info_and_list_describe_remote_segments,
            keys_of_the_wrong_type_are_corrupt,
            a_server_restart_gives_clear_errors_then_recovers,
            a_stopped_server_times_out_instead_of_hanging,
            credentials_are_checked_and_never_shown,
        ];
        let server = server(&[]);
        SHARED_URL.set(server.url()).unwrap();
        *SHARED.lock().unwrap() = Some(server);
        let trials = common::trials(tests, Duration::from_secs(120));
        let conclusion = libtest_mimic::run(&args, trials);
        drop(SHARED.lock().unwrap().take());
        conclusion.exit();
    }

    // ----- helper roles -----------------------------------------------------

    fn run_role(role: &str, args: &[String]) {
        let at = Location::parse(&args[0]).unwrap();
        let name = args[1].as_str();
        match role {
            "write" => {
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                seg.write(0, args[2].as_bytes()).unwrap();
                println!("done");
            }
            "read" => {
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                let bytes = seg.read(0, seg.size()).unwrap();
                println!("{}", String::from_utf8_lossy(&bytes).trim_end_matches('\0'));
            }
            "hold-open" => {
                let seg = SegmentOptions::new()
                    .open_or_create_at(&at, name, 64)
                    .unwrap();
                println!("open");
                std::thread::sleep(Duration::from_secs(600));
                drop(seg);
            }
            "hold-lock" => {
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                let mut guard = seg.lock().unwrap();
                if args.get(2).is_some_and(|a| a == "mid-write") {
                    guard.write(0, b"half").unwrap();
                }
                println!("locked");
                std::thread::sleep(Duration::from_secs(600));
                drop(guard);
            }
            "hold-lock-for" => {
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                let guard = seg.lock().unwrap();
                println!("locked");
                std::thread::sleep(Duration::from_millis(args[2].parse().unwrap()));
                guard.unlock().unwrap();
                println!("released");
            }
            "write-after-trigger" => {
                // Takes the lock, starts a write, then waits for the trigger
                // file and tries to finish it.
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                let mut guard = seg.lock().unwrap();
                guard.write(0, b"stale").unwrap();
                println!("wrote");
                let trigger = PathBuf::from(&args[2]);
                while !trigger.exists() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                match guard.unlock() {
                    Err(Error::LeaseLost { .. }) => println!("lost"),
                    other => println!("unexpected: {other:?}"),
                }
            }
            "wait-change" => {
                let seg = SegmentOptions::new().open_at(&at, name).unwrap();
                let seen = seg.generation().unwrap();
                println!("waiting");
                let now = seg.wait_for_change(seen, Duration::from_secs(30)).unwrap();
                println!("changed {now}");
            }
            other => panic!("unknown role {other}"),
        }
    }

    fn helper(role: &str, name: &str, extra: &[&str]) -> Helper {
        let url = url();
        let mut args = vec![url.as_str(), name];
        args.extend_from_slice(extra);
        Helper::spawn(role, &args)
    }

    // ----- tests ---------------------------------------------------------------

    fn two_processes_exchange_data() {
        let name = unique_name("remote-exchange");
        let seg = create(&name, 64);
        let mut writer = helper("write", &name, &["from the helper"]);
        writer.expect("done");
        writer.finish(20 * SECOND);
        assert_eq!(&seg.read(0, 15).unwrap(), b"from the helper");
        let mut answer = "你好, helper".as_bytes().to_vec();
        answer.resize(64, 0);
        seg.write(0, &answer).unwrap();
        let reader = helper("read", &name, &[]);
        assert_eq!(reader.line(20 * SECOND), "你好, helper");
        assert_eq!(seg.generation().unwrap(), 2);
    }

    fn writes_and_reads_are_clamped() {
        let name = unique_name("remote-clamp");
        let seg = create(&name, 8);
        assert_eq!(seg.write(6, b"hello").unwrap(), 2);
        assert_eq!(seg.read(6, 100).unwrap(), b"he");
        assert_eq!(seg.write(8, b"x").unwrap(), 0);
        assert!(matches!(
            seg.write(9, b"x"),
            Err(Error::OutOfRange { offset: 9, size: 8 })
        ));
        assert!(matches!(
            seg.read_consistent(9, 1),
            Err(Error::OutOfRange { .. })
        ));
        let snap = seg.read_consistent(0, 100).unwrap();
        assert_eq!(snap.data, b"\0\0\0\0\0\0he");
        assert_eq!(snap.generation, 1);
    }

    fn sizes_and_names_are_checked() {
        let name = unique_name("remote-sizes");
        let seg = create(&name, 16);
        assert!(matches!(
            SegmentOptions::new().create_at(&at(), &name, 16),
            Err(Error::AlreadyExists { .. })
        ));
        match SegmentOptions::new().open_or_create_at(&at(), &name, 32) {
            Err(Error::SizeMismatch {
                existing: 16,
                requested: 32,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(open(&name).size(), 16);
        assert!(matches!(
            SegmentOptions::new().open_at(&at(), &unique_name("remote-absent")),
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            SegmentOptions::new().create_at(&at(), &unique_name("zero"), 0),
            Err(Error::InvalidSize { .. })
        ));
        assert!(matches!(
            SegmentOptions::new().create_at(&at(), &unique_name("huge"), 600 << 20),
            Err(Error::InvalidSize { .. })
        ));
        assert!(matches!(
            SegmentOptions::new().create_at(&at(), "a/b", 8),
            Err(Error::InvalidName { .. })
        ));
        drop(seg);
    }

    fn a_lock_held_elsewhere_times_out() {
        let name = unique_name("remote-busy");
        let seg = create(&name, 8);
        let holder = helper("hold-lock", &name, &[]);
        holder.expect("locked");
        let started = Instant::now();
        match seg.lock_timeout(Duration::from_millis(300)) {
            Err(Error::Timeout { timeout, .. }) => assert_eq!(timeout, Duration::from_millis(300)),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(300));
        // The holder renews its 1 s lease: still held well past it.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(seg.try_lock().unwrap().is_none());
        assert!(matches!(
            info_at(&at(), &name).unwrap().lock,
            LockState::Held { .. }
        ));
    }

    fn a_waiting_locker_is_woken_by_the_release() {
        // A 10 s lease: a waiter that missed the release would sleep a whole
        // second (its longest wait between retries) before trying again.
        let at = Location::parse(&format!("{}?lease=10", shared_url())).unwrap();
        let name = unique_name("remote-woken");
        let seg = SegmentOptions::new().create_at(&at, &name, 8).unwrap();
        let url = format!("{}?lease=10", shared_url());
        let mut holder = Helper::spawn("hold-lock-for", &[url.as_str(), name.as_str(), "300"]);
        holder.expect("locked");
        let started = Instant::now();
        let guard = seg.lock_timeout(10 * SECOND).unwrap();
        let took = started.elapsed();
        holder.expect("released");
        assert!(guard.owner_died().is_none());
        drop(guard);
        holder.finish(20 * SECOND);
        assert!(
            took < Duration::from_millis(900),
            "woken only after {took:?}"
        );
    }

    fn a_killed_holder_is_taken_over_after_its_lease() {
        for mid_write in [false, true] {
            let name = unique_name("remote-killed");
            let seg = create(&name, 8);
            let mut holder = helper(
                "hold-lock",
                &name,
                if mid_write { &["mid-write"] } else { &[] },
            );
            holder.expect("locked");
            let pid = holder.pid();
            holder.kill();
            let started = Instant::now();
            let guard = seg.lock_timeout(10 * SECOND).unwrap();
            let took = started.elapsed();
            let died = guard.owner_died().expect("the holder's death is reported");
            assert_eq!(died.pid, Some(pid));
            assert_eq!(died.mid_write, mid_write);
            assert!(guard.owner_died_host().is_some_and(|h| !h.is_empty()));
            // Its buffered write never landed: the data is whole.
            assert!(guard.is_consistent());
            drop(guard);
            assert_eq!(seg.read(0, 8).unwrap(), [0; 8]);
            // Recovered once its 1 s lease ran out: not before, not much after.
            assert!(took <= Duration::from_millis(2500), "took {took:?}");
            assert_eq!(seg.info().unwrap().owner_deaths, 1);
        }
    }

    fn a_paused_holder_loses_its_lease_and_nothing_it_sends_lands() {
        let name = unique_name("remote-paused");
        let seg = create(&name, 16);
        let trigger = std::env::temp_dir().join(format!("{name}.go"));
        let mut holder = helper("write-after-trigger", &name, &[trigger.to_str().unwrap()]);
        holder.expect("wrote");
        let pid = holder.pid() as i32;
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        // Past the 1 s lease, another process takes the lock and writes.
        let mut guard = seg.lock_timeout(10 * SECOND).unwrap();
        let died = guard
            .owner_died()
            .expect("the paused holder's lease ran out");
        assert!(died.mid_write, "it had begun a write");
        guard.write(0, b"new owner").unwrap();
        let generation = guard.unlock().unwrap();
        // SAFETY: as above.
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::fs::write(&trigger, b"").unwrap();
        assert_eq!(holder.line(20 * SECOND), "lost");
        holder.finish(20 * SECOND);
        let _ = std::fs::remove_file(&trigger);
        let snap = seg.read_consistent(0, 16).unwrap();
        assert_eq!(
            &snap.data[..9],
            b"new owner",
            "the stale write did not land"
        );
        assert_eq!(snap.generation, generation);
    }

    fn guard_reads_see_its_own_writes() {
        let name = unique_name("remote-guard");
        let seg = create(&name, 8);
        seg.write(0, b"abcdefgh").unwrap();
        let mut guard = seg.lock().unwrap();
        guard.write(2, b"XY").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(guard.read_into(0, &mut buf).unwrap(), 8);
        assert_eq!(&buf, b"abXYefgh");
        // Others see nothing of it until it is released.
        assert_eq!(seg.read_consistent(0, 8).unwrap().data, b"abcdefgh");
        assert_eq!(guard.unlock().unwrap(), 2);
        assert_eq!(seg.read_consistent(0, 8).unwrap().data, b"abXYefgh");
    }

    fn wait_for_change_wakes_across_processes() {
        let name = unique_name("remote-wait");
        let seg = create(&name, 8);
        let waiter = helper("wait-change", &name, &[]);
        waiter.expect("waiting");
        std::thread::sleep(Duration::from_millis(100));
        seg.write(0, b"ping").unwrap();
        assert_eq!(waiter.line(20 * SECOND), "changed 1");
        // And here, woken by another process.
        let seen = seg.generation().unwrap();
        let mut writer = helper("write", &name, &["pong"]);
        let now = seg.wait_for_change(seen, 20 * SECOND).unwrap();
        assert_eq!(now, seen + 1);
        writer.finish(20 * SECOND);
    }

    fn wait_for_change_honours_its_timeout() {
        let name = unique_name("remote-wait-timeout");
        let seg = create(&name, 8);
        let started = Instant::now();
        assert!(matches!(
            seg.wait_for_change(0, Duration::from_millis(300)),
            Err(Error::Timeout { .. })
        ));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < 5 * SECOND,
            "{took:?}"
        );
        seg.write(0, b"x").unwrap();
        assert_eq!(seg.wait_for_change(0, Duration::ZERO).unwrap(), 1);
    }

    fn until_last_close_goes_with_the_last_close() {
        let name = unique_name("remote-ulc");
        let a = create(&name, 8);
        let b = open(&name);
        drop(a);
        assert_eq!(open(&name).size(), 8);
        drop(b);
        assert!(matches!(
            SegmentOptions::new().open_at(&at(), &name),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(
            shared_cli(&["EXISTS", &format!("shmbox:{{{name}}}:data")]),
            "0"
        );
    }

    fn until_last_close_goes_after_every_holder_is_killed() {
        let name = unique_name("remote-ulc-killed");
        let mut first = helper("hold-open", &name, &[]);
        first.expect("open");
        let mut second = helper("hold-open", &name, &[]);
        second.expect("open");
        assert_eq!(
            info_at(&at(), &name).unwrap().remote.unwrap().open_handles,
            2
        );
        first.kill();
        second.kill();
        // Their leases (1 s) run out; the next access reclaims it.
        let took = wait_until("the dead segment is reclaimed", 10 * SECOND, || {
            matches!(info_at(&at(), &name), Err(Error::NotFound { .. }))
        });
        assert!(took < 3 * SECOND, "took {took:?}");
        let keys = shared_cli(&["KEYS", &format!("shmbox:{{{name}}}:*")]);
        assert!(keys.is_empty(), "keys left: {keys}");
    }

    fn persistent_stays_until_removed_and_in_use_is_busy() {
        let name = unique_name("remote-persistent");
        let _removed = Removed(name.clone());
        drop(persistent(&name, 8));
        assert_eq!(open(&name).lifetime(), Lifetime::Persistent);
        remove_at(&at(), &name).unwrap();
        assert!(matches!(
            remove_at(&at(), &name),
            Err(Error::NotFound { .. })
        ));

        let busy = unique_name("remote-busy-rm");
        let seg = create(&busy, 8);
        assert!(matches!(remove_at(&at(), &busy), Err(Error::Busy { .. })));
        drop(seg);
    }

    fn info_and_list_describe_remote_segments() {
        let name = unique_name("remote-info");
        let seg = create(&name, 32);
        seg.write(0, b"x").unwrap();
        let info = seg.info().unwrap();
        assert_eq!((info.size, info.generation), (32, 1));
        assert_eq!(info.last_writer_pid, Some(std::process::id()));
        assert_eq!(info.lock, LockState::Free);
        let remote = info.remote.unwrap();
        assert_eq!(remote.open_handles, 1);
        assert!(remote.location.starts_with("redis://127.0.0.1:"));
        assert!(
            list_at(&at())
                .unwrap()
                .iter()
                .any(|i| i.name.as_str() == name)
        );
        let guard = seg.lock().unwrap();
        assert!(
            matches!(seg.info().unwrap().lock, LockState::Held { pid: Some(p) } if p == std::process::id())
        );
        drop(guard);
    }

    fn keys_of_the_wrong_type_are_corrupt() {
        let name = unique_name("remote-corrupt");
        shared_cli(&["SET", &format!("shmbox:{{{name}}}:meta"), "not a hash"]);
        match SegmentOptions::new().open_at(&at(), &name) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("not a hash"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        shared_cli(&["DEL", &format!("shmbox:{{{name}}}:meta")]);
        // Metadata whose data is gone.
        let seg = create(&name, 8);
        shared_cli(&["DEL", &format!("shmbox:{{{name}}}:data")]);
        match seg.write(0, b"x") {
            Err(Error::Corrupt { .. }) => {}
            other => panic!("{other:?}"),
        }
        match SegmentOptions::new().open_at(&at(), &name) {
            Err(Error::Corrupt { reason, .. }) => {
                assert!(reason.contains("data key is missing"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // A data key of another type.
        shared_cli(&["HSET", &format!("shmbox:{{{name}}}:data"), "a", "b"]);
        assert!(matches!(
            seg.read_consistent(0, 1),
            Err(Error::Corrupt { .. })
        ));
        drop(seg);
        shared_cli(&[
            "DEL",
            &format!("shmbox:{{{name}}}:meta"),
            &format!("shmbox:{{{name}}}:data"),
            &format!("shmbox:{{{name}}}:handles"),
        ]);
    }

    fn a_server_restart_gives_clear_errors_then_recovers() {
        let mut server = server(&[]);
        let at = Location::parse(&format!("{}?timeout=1", server.url())).unwrap();
        let name = unique_name("remote-restart");
        let seg = SegmentOptions::new().create_at(&at, &name, 8).unwrap();
        seg.write(0, b"before").unwrap();
        server.kill();
        let started = Instant::now();
        match seg.write(0, b"during") {
            Err(e @ Error::Remote { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&server.url()), "{text}");
                assert!(
                    text.contains("refused") || text.contains("connection"),
                    "{text}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < 5 * SECOND);
        match SegmentOptions::new().open_at(&at, &name) {
            Err(Error::Remote { reason, .. }) => assert!(reason.contains("refused"), "{reason}"),
            other => panic!("{other:?}"),
        }
        server.launch();
        // Back, but without persistence it lost the segment: said plainly.
        match seg.generation() {
            Err(Error::Remote { reason, .. }) => {
                assert!(reason.contains("no longer has it"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        // And the next calls work.
        let again = SegmentOptions::new().create_at(&at, &name, 8).unwrap();
        again.write(0, b"after").unwrap();
        assert_eq!(seg.read(0, 5).unwrap(), b"after");
    }

    fn a_stopped_server_times_out_instead_of_hanging() {
        let server = server(&[]);
        let at = Location::parse(&format!("{}?timeout=0.5", server.url())).unwrap();
        let name = unique_name("remote-stopped");
        let seg = SegmentOptions::new().create_at(&at, &name, 8).unwrap();
        // SAFETY: kill only sends a signal.
        unsafe { libc::kill(server.pid() as i32, libc::SIGSTOP) };
        let started = Instant::now();
        let result = seg.write(0, b"x");
        let took = started.elapsed();
        // SAFETY: as above.
        unsafe { libc::kill(server.pid() as i32, libc::SIGCONT) };
        match result {
            Err(Error::Remote { reason, .. }) => {
                assert!(reason.contains("no answer within 500ms"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
        assert!(took < 3 * SECOND, "took {took:?}");
        assert_eq!(seg.write(0, b"y").unwrap(), 1, "the next call works");
    }

    fn credentials_are_checked_and_never_shown() {
        let server = server(&["--requirepass", "s3cret"]);
        let name = unique_name("remote-auth");
        for url in [server.url(), server.url().replace("//", "//:wrong@")] {
            match SegmentOptions::new().create_at(&Location::parse(&url).unwrap(), &name, 8) {
                Err(e @ Error::Remote { .. }) => {
                    let text = e.to_string();
                    assert!(text.contains("credentials"), "{text}");
                    assert!(!text.contains("wrong"), "the password shows: {text}");
                }
                other => panic!("{url}: {other:?}"),
            }
        }
        let good = RedisLocation::parse(&server.url().replace("//", "//:s3cret@")).unwrap();
        assert!(!good.to_string().contains("s3cret"));
        let seg = SegmentOptions::new()
            .create_at(&Location::Redis(good), &name, 8)
            .unwrap();
        seg.write(0, b"ok").unwrap();
    }
}
