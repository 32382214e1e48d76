//! Multi-process tests of the library: processes exchanging data, counting
//! under the lock, dying while holding it or mid-write, waiting for changes,
//! and the segment lifetime.
//!
//! Every test uses unique segment names, removes what it made, and runs under
//! a watchdog. Helper processes are this binary again (see `common`).
#![allow(unsafe_code)]

mod common;

// Linux-specific (SIGKILL, /dev/shm files, uids, seccomp); the backend-neutral
// tests are in conformance.rs, which every platform runs.
#[cfg(not(target_os = "linux"))]
fn main() {
    println!("multiprocess: Linux-only tests; see conformance.rs for this platform");
}

#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(target_os = "linux")]
mod linux {
    use crate::common;

    use std::time::{Duration, Instant};

    use crate::common::{Cleanup, Helper, segment_path, unique_name, wait_until};
    use libtest_mimic::Arguments;
    use shmbox::{Error, Lifetime, LockState, Segment, SegmentOptions};

    const SECOND: Duration = Duration::from_secs(1);

    /// `(name, function)` for each test function named.
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
        let mut args = Arguments::from_args();
        // One test at a time: they start processes and measure recovery times on
        // a small machine.
        args.test_threads.get_or_insert(1);
        let tests: &[(&str, fn())] = tests![
            two_processes_exchange_text,
            uncontended_operations_make_no_system_call,
            four_processes_count_exactly_and_all_progress,
            four_contending_processes_all_progress,
            sigkill_while_holding_the_lock_is_recovered_fast,
            recovery_ignores_the_recorded_pid,
            writer_killed_mid_write_reports_torn_data,
            writer_killed_at_random_moments_never_yields_torn_reads,
            wait_for_change_wakes_across_processes,
            wait_for_change_wakes_every_waiting_process,
            wait_for_change_honours_its_timeout,
            spinning_wait_sees_a_write_from_another_process,
            spinning_wait_sleeps_after_its_spin_and_is_woken,
            spinning_wait_honours_a_shorter_timeout,
            until_last_close_is_gone_after_the_last_close,
            until_last_close_is_gone_after_the_last_holder_is_killed,
            until_last_close_survives_a_killed_holder_while_another_holds_it,
            opening_starts_no_process_and_installs_no_signal_handler,
            prefork_workers_do_not_keep_a_killed_parent_lock_alive,
            a_forked_child_dropping_its_copy_leaves_the_parent_alone,
            persistent_stays_until_removed,
            remove_refuses_an_until_last_close_segment_in_use,
            concurrent_open_and_close_leave_nothing_behind,
            segment_of_another_user_is_refused,
            segment_of_root_is_permission_denied_to_another_user,
            info_and_list_describe_segments,
        ];
        let trials = common::trials(tests, Duration::from_secs(120));
        libtest_mimic::run(&args, trials).exit();
    }

    // ----- helper roles -----------------------------------------------------------

    fn run_role(role: &str, args: &[String]) {
        let arg = |i: usize| args[i].as_str();
        match role {
            "write" => {
                let seg = Segment::open(arg(0)).unwrap();
                seg.write(0, arg(1).as_bytes()).unwrap();
                println!("done");
            }
            "read" => {
                let seg = Segment::open(arg(0)).unwrap();
                let bytes = seg.read(0, seg.size()).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                println!("{}", text.trim_end_matches('\0'));
            }
            "hold-lock" => {
                let seg = Segment::open(arg(0)).unwrap();
                let guard = seg.lock().unwrap();
                println!("locked");
                sleep_forever(guard);
            }
            "hold-mid-write" => {
                let seg = Segment::open(arg(0)).unwrap();
                let mut guard = seg.lock().unwrap();
                let half = seg.size() / 2;
                guard
                    .data_mut()
                    .slice_mut(..half)
                    .unwrap()
                    .fill(0xEE)
                    .unwrap();
                println!("writing");
                sleep_forever(guard);
            }
            "count" => count_role(arg(0), arg(1).parse().unwrap(), arg(2).parse().unwrap()),
            "contend" => contend_role(arg(0), arg(1).parse().unwrap(), arg(2).parse().unwrap()),
            "create-and-hold" => {
                let seg = Segment::create(arg(0), 64).unwrap();
                println!("ready");
                sleep_forever(seg);
            }
            "open-and-hold" => {
                let seg = Segment::open(arg(0)).unwrap();
                println!("ready");
                sleep_forever(seg);
            }
            "create-persistent" => {
                let mode = u32::from_str_radix(arg(1), 8).unwrap();
                let seg = SegmentOptions::new()
                    .lifetime(Lifetime::Persistent)
                    .mode(mode)
                    .create(arg(0), 64)
                    .unwrap();
                seg.write(0, b"persistent").unwrap();
                println!("created");
            }
            "try-open" => match Segment::open(arg(0)) {
                Ok(_) => println!("ok"),
                Err(e) => println!("err {e}"),
            },
            "write-records" => write_records_role(arg(0)),
            "no-syscalls" => no_syscalls_role(arg(0)),
            "wait-change" => {
                let seg = Segment::open(arg(0)).unwrap();
                let since = seg.generation();
                println!("waiting");
                let now = seg.wait_for_change(since, Duration::from_secs(60)).unwrap();
                println!("woke {now}");
            }
            "churn" => {
                let rounds: usize = arg(1).parse().unwrap();
                let me = std::process::id().to_le_bytes();
                for _ in 0..rounds {
                    let seg = Segment::open_or_create(arg(0), 64).unwrap();
                    seg.write(0, &me).unwrap();
                    assert_eq!(seg.read_consistent(0, 4).unwrap().data.len(), 4);
                }
                println!("done");
            }
            "guest-check" => guest_check_role(arg(0)),
            "prefork" => prefork_role(arg(0)),
            "fork-drop" => fork_drop_role(arg(0)),
            other => panic!("unknown helper role {other}"),
        }
    }

    /// This process's children, from every thread's `children` list.
    fn children() -> Vec<u32> {
        let mut found = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            found.extend(list.split_whitespace().map(|p| p.parse::<u32>().unwrap()));
        }
        found
    }

    fn sigbus_action() -> libc::sighandler_t {
        // SAFETY: a plain struct; all zeroes is valid, and sigaction fills it.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: reads the current action only.
        let read = unsafe { libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut action) };
        assert_eq!(read, 0);
        action.sa_sigaction
    }

    /// Creates, opens, uses and closes segments with the default options,
    /// and reports whether that started a process or changed the SIGBUS
    /// action.
    fn guest_check_role(name: &str) {
        let children_before = children();
        let sigbus_before = sigbus_action();
        let seg = Segment::create(name, 4096).unwrap();
        let other = Segment::open(name).unwrap();
        let third = Segment::open_or_create(name, 4096).unwrap();
        seg.write(0, b"guest").unwrap();
        assert_eq!(other.read(0, 5).unwrap(), b"guest");
        drop(other.lock().unwrap());
        shmbox::reclaim().unwrap();
        shmbox::list().unwrap();
        // A forked helper would show up at once; give a late one a moment.
        std::thread::sleep(Duration::from_millis(100));
        let children_after = children();
        let sigbus_after = sigbus_action();
        drop((seg, other, third));
        println!(
            "children {} -> {}, sigbus {}",
            children_before.len(),
            children_after.len(),
            if sigbus_before == sigbus_after {
                "unchanged"
            } else {
                "changed"
            }
        );
    }

    /// The prefork pattern: open a segment, fork four workers that use the
    /// library (each tries the inherited handle, then opens its own and
    /// counts under the lock), then take the lock and wait to be killed.
    fn prefork_role(name: &str) {
        let seg = Segment::open(name).unwrap();
        let mut workers = Vec::new();
        for slot in 0..4usize {
            // SAFETY: this helper process has a single thread (it runs
            // before any test harness), so the child may run any code.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // The parent's alarm is not inherited; the test kills us, or
                // this does.
                // SAFETY: alarm takes a plain integer.
                unsafe { libc::alarm(60) };
                let inherited = match seg.write(0, b"from a child") {
                    Err(Error::Forked { opened_by, .. }) if opened_by != std::process::id() => {
                        "forked"
                    }
                    Err(_) => "other error",
                    Ok(_) => "accepted",
                };
                let own = Segment::open(name).unwrap();
                for _ in 0..100 {
                    let mut guard = own.lock().unwrap();
                    let at = 8 + 8 * slot;
                    let v: u64 = guard.read_pod(at).unwrap();
                    guard.write_pod(at, &(v + 1)).unwrap();
                }
                println!("worker {} {inherited}", std::process::id());
                // Then says so in the segment, so the parent knows this line
                // came before its own.
                own.lock().unwrap().write_pod(40 + 8 * slot, &1u64).unwrap();
                // Keeps both handles, the inherited one too, and lives on.
                sleep_forever((seg, own));
            }
            assert!(pid > 0, "fork failed");
            workers.push(pid);
        }
        // Wait for the workers to finish (they count to 100 each, then mark
        // their done flag).
        loop {
            let guard = seg.lock().unwrap();
            let done: u64 = (0..4)
                .map(|i| guard.read_pod::<u64>(40 + 8 * i).unwrap())
                .sum();
            if done == 4 {
                std::mem::forget(guard); // held until this process is killed
                break;
            }
            drop(guard);
            std::thread::sleep(Duration::from_millis(1));
        }
        println!("locked");
        sleep_forever(seg);
    }

    /// Creates an until-last-close segment, holds its lock, forks a child
    /// that uses and drops its inherited copy, and checks that the segment,
    /// its name and the lock are all still this process's.
    fn fork_drop_role(name: &str) {
        let seg = Segment::create(name, 64).unwrap();
        seg.write(0, b"parent").unwrap();
        let guard = seg.lock().unwrap();
        // SAFETY: single-threaded helper, as in `prefork_role`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let mut code = 0;
            if !matches!(seg.lock_timeout(Duration::ZERO), Err(Error::Forked { .. })) {
                code |= 1;
            }
            if !matches!(seg.read(0, 6), Err(Error::Forked { .. })) {
                code |= 2;
            }
            // The lock-free read too, though its fast path needs no lock.
            if !matches!(seg.read_consistent(0, 6), Err(Error::Forked { .. })) {
                code |= 8;
            }
            // The generation is readable: the memory is there.
            if seg.generation() != 1 {
                code |= 4;
            }
            // Dropping the guard and the handle must release nothing.
            drop(guard);
            drop(seg);
            // SAFETY: ends the child at once, without the parent's exit code.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        let child = libc::WEXITSTATUS(status);
        let named = segment_path(name).exists();
        let info = shmbox::info(name).unwrap();
        let other = Segment::open(name).unwrap();
        let still_locked = other.try_lock().unwrap().is_none();
        let text = other.read_consistent(0, 6).unwrap().data;
        drop(guard);
        let free_now = other.try_lock().unwrap().is_some();
        println!(
            "child {child} named {named} held-by-us {} locked {still_locked} text {} free-after {free_now}",
            info.lock
                == LockState::Held {
                    pid: Some(std::process::id())
                },
            String::from_utf8_lossy(&text),
        );
    }

    fn sleep_forever<T>(keep: T) -> ! {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
            let _ = &keep;
        }
    }

    /// Layout of the counting segment: the shared counter, then one progress
    /// slot per process.
    fn count_role(name: &str, iterations: u64, slot: usize) {
        let seg = Segment::open(name).unwrap();
        let start = seg.generation();
        println!("ready");
        seg.wait_for_change(start, Duration::from_secs(30)).unwrap();
        let mut worst_wait = Duration::ZERO;
        for _ in 0..iterations {
            let asked = Instant::now();
            let mut guard = seg.lock().unwrap();
            worst_wait = worst_wait.max(asked.elapsed());
            for at in [0, 8 + 8 * slot] {
                let v: u64 = guard.read_pod(at).unwrap();
                guard.write_pod(at, &(v + 1)).unwrap();
            }
        }
        let guard = seg.lock().unwrap();
        let slots: Vec<String> = (0..4)
            .map(|i| guard.read_pod::<u64>(8 + 8 * i).unwrap().to_string())
            .collect();
        drop(guard);
        println!("done {} {}", worst_wait.as_micros(), slots.join(" "));
    }

    /// Takes the lock over and over for `millis`, holding it about a
    /// microsecond each time, and reports how often it got it and its worst wait.
    fn contend_role(name: &str, millis: u64, slot: usize) {
        let seg = Segment::open(name).unwrap();
        let start = seg.generation();
        println!("ready");
        seg.wait_for_change(start, Duration::from_secs(30)).unwrap();
        let (began, mut count, mut worst_wait) = (Instant::now(), 0u64, Duration::ZERO);
        while began.elapsed() < Duration::from_millis(millis) {
            let asked = Instant::now();
            let mut guard = seg.lock().unwrap();
            worst_wait = worst_wait.max(asked.elapsed());
            let at = 8 * slot;
            let v: u64 = guard.read_pod(at).unwrap();
            guard.write_pod(at, &(v + 1)).unwrap();
            let held = Instant::now();
            while held.elapsed() < Duration::from_micros(1) {}
            count += 1;
        }
        println!("done {count} {}", worst_wait.as_micros());
    }

    /// Runs the uncontended fast paths under a seccomp filter that kills the
    /// process on any system call but `write` and `exit`.
    fn no_syscalls_role(name: &str) {
        let seg = Segment::open(name).unwrap();
        let payload = [7u8; 64];
        let mut out = [0u8; 64];
        seg.write(0, &payload).unwrap(); // first touch of the pages, outside the filter
        let before = seg.generation();
        forbid_system_calls();
        for _ in 0..10_000 {
            assert_eq!(seg.write(0, &payload).unwrap(), 64);
            let mut guard = seg.lock().unwrap();
            guard.write(64, &payload).unwrap();
            drop(guard);
            assert!(seg.try_lock().unwrap().is_some());
            seg.read_consistent_into(0, &mut out).unwrap();
            seg.read_into(0, &mut out).unwrap();
            seg.wait_for_change(before, Duration::from_secs(1)).unwrap();
        }
        let ok = b"ok\n";
        // SAFETY: write and _exit are the system calls the filter allows.
        unsafe {
            libc::write(1, ok.as_ptr().cast(), ok.len());
            libc::_exit(0);
        }
    }

    fn forbid_system_calls() {
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let jump_if = |k: i64, jt: u8| libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt,
            jf: 0,
            k: k as u32,
        };
        let mut filter = [
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0), // the system call number
            jump_if(libc::SYS_write, 3),
            jump_if(libc::SYS_exit_group, 2),
            jump_if(libc::SYS_exit, 1),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ];
        let program = libc::sock_fprog {
            len: filter.len() as u16,
            filter: filter.as_mut_ptr(),
        };
        // SAFETY: prctl with a valid filter program that outlives the call.
        unsafe {
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
            assert_eq!(
                libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &program),
                0
            );
        }
    }

    /// A 64-byte record: seven copies of a counter and a checksum of them.
    fn record(v: u64) -> [u8; 64] {
        let mut r = [0u8; 64];
        for i in 0..7 {
            r[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        r[56..].copy_from_slice(&checksum(v).to_le_bytes());
        r
    }

    fn checksum(v: u64) -> u64 {
        v.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5_5A5A_F00D_CAFE
    }

    fn record_is_whole(r: &[u8]) -> bool {
        let v = u64::from_le_bytes(r[..8].try_into().unwrap());
        r == record(v)
    }

    fn write_records_role(name: &str) {
        let seg = Segment::open(name).unwrap();
        println!("started");
        for v in 1u64.. {
            let mut guard = seg.lock().unwrap();
            // Byte by byte, so that a kill lands in the middle of a record.
            for (i, b) in record(v).iter().enumerate() {
                guard.data_mut().set(i, *b).unwrap();
            }
        }
    }

    // ----- tests ---------------------------------------------------------------------

    /// The FoxPro sample's scenario without the window.
    fn two_processes_exchange_text() {
        let name = unique_name("exchange");
        let seg = Segment::create(&name, 1024).unwrap();

        let mut writer = Helper::spawn("write", &[&name, "你好 from the child"]);
        writer.expect("done");
        writer.finish(10 * SECOND);
        let text = seg.read(0, 1024).unwrap();
        assert!(text.starts_with("你好 from the child".as_bytes()));

        let padded = format!("{:\0<1024}", "hello from the parent");
        assert_eq!(seg.write(0, padded.as_bytes()).unwrap(), 1024);
        let mut reader = Helper::spawn("read", &[&name]);
        reader.expect("hello from the parent");
        reader.finish(10 * SECOND);
    }

    /// Uncontended lock, unlock, writes (with nobody waiting for changes) and
    /// reads make no system call at all: a process that tries is killed.
    fn uncontended_operations_make_no_system_call() {
        let name = unique_name("no-syscalls");
        let _seg = Segment::create(&name, 256).unwrap();
        let mut helper = Helper::spawn("no-syscalls", &[&name]);
        helper.expect("ok");
        helper.finish(10 * SECOND);
    }

    fn four_processes_count_exactly_and_all_progress() {
        const ITERATIONS: u64 = 50_000;
        let name = unique_name("count");
        let seg = Segment::create(&name, 64).unwrap();
        let mut helpers: Vec<Helper> = (0..4)
            .map(|slot| {
                Helper::spawn(
                    "count",
                    &[&name, &ITERATIONS.to_string(), &slot.to_string()],
                )
            })
            .collect();
        for h in &helpers {
            h.expect("ready");
        }
        seg.write(40, b"go").unwrap(); // the generation changes: all start
        let started = Instant::now();
        let reports: Vec<Vec<u64>> = helpers
            .iter()
            .map(|h| {
                let line = h.line(Duration::from_secs(100));
                let fields: Vec<u64> = line
                    .strip_prefix("done ")
                    .unwrap_or_else(|| panic!("unexpected report {line:?}"))
                    .split(' ')
                    .map(|f| f.parse().unwrap())
                    .collect();
                fields
            })
            .collect();
        for h in &mut helpers {
            h.finish(10 * SECOND);
        }
        let elapsed = started.elapsed();
        let data = seg.read(0, 40).unwrap();
        let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(word(0), 4 * ITERATIONS, "lost or extra increments");
        for slot in 0..4 {
            assert_eq!(word(1 + slot), ITERATIONS);
        }
        let worst = reports.iter().map(|r| r[0]).max().unwrap();
        eprintln!(
            "    4 x {ITERATIONS} lock+increment+unlock: {:.0} ms, {:.0} ns per increment, worst single wait {worst} us",
            elapsed.as_secs_f64() * 1e3,
            elapsed.as_nanos() as f64 / (4 * ITERATIONS) as f64
        );
    }

    /// No process starves: four processes contend for 500 ms each, and every
    /// one gets the lock a fair share of the time.
    fn four_contending_processes_all_progress() {
        let name = unique_name("contend");
        let seg = Segment::create(&name, 64).unwrap();
        let mut helpers: Vec<Helper> = (0..4)
            .map(|slot| Helper::spawn("contend", &[&name, "500", &slot.to_string()]))
            .collect();
        for h in &helpers {
            h.expect("ready");
        }
        seg.write(40, b"go").unwrap();
        let reports: Vec<(u64, u64)> = helpers
            .iter()
            .map(|h| {
                let line = h.line(Duration::from_secs(60));
                let mut f = line
                    .strip_prefix("done ")
                    .unwrap()
                    .split(' ')
                    .map(|f| f.parse::<u64>().unwrap());
                (f.next().unwrap(), f.next().unwrap())
            })
            .collect();
        for h in &mut helpers {
            h.finish(10 * SECOND);
        }
        let data = seg.read(0, 32).unwrap();
        let counts: Vec<u64> = (0..4)
            .map(|i| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().unwrap()))
            .collect();
        assert_eq!(
            counts,
            reports.iter().map(|r| r.0).collect::<Vec<_>>(),
            "counts in memory differ from the reports"
        );
        let total: u64 = counts.iter().sum();
        let worst = reports.iter().map(|r| r.1).max().unwrap();
        eprintln!(
            "    acquisitions in 500 ms: {counts:?} (total {total}); worst single wait {worst} us"
        );
        for &c in &counts {
            assert!(
                c * 20 >= total / 4,
                "a process got under 5% of its fair share: {counts:?}"
            );
        }
    }

    fn sigkill_while_holding_the_lock_is_recovered_fast() {
        let name = unique_name("sigkill");
        let seg = Segment::create(&name, 64).unwrap();

        // Dead before we ask: the lock is taken over at once.
        let mut holder = Helper::spawn("hold-lock", &[&name]);
        holder.expect("locked");
        let holder_pid = holder.pid();
        holder.kill();
        let asked = Instant::now();
        let guard = seg.lock().unwrap();
        let after_death = asked.elapsed();
        let died = guard.owner_died().expect("the owner's death is reported");
        assert_eq!(died.pid, Some(holder_pid));
        assert!(!died.mid_write);
        assert!(guard.is_consistent());
        drop(guard);
        assert!(
            after_death < Duration::from_millis(100),
            "took {after_death:?}"
        );

        // Dies while we wait.
        let mut holder = Helper::spawn("hold-lock", &[&name]);
        holder.expect("locked");
        let waited = std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let guard = seg.lock_timeout(10 * SECOND).unwrap();
                (Instant::now(), guard.owner_died())
            });
            std::thread::sleep(Duration::from_millis(50)); // let it fall asleep
            let killed = Instant::now();
            holder.child.kill().unwrap();
            let (acquired, died) = waiter.join().unwrap();
            assert!(died.is_some(), "the owner's death is reported");
            acquired.duration_since(killed)
        });
        holder.child.wait().unwrap();
        assert!(waited < Duration::from_millis(100), "took {waited:?}");
        eprintln!(
            "    recovery after SIGKILL: {:.3} ms when locking after the death, {:.3} ms from kill to lock while waiting",
            after_death.as_secs_f64() * 1e3,
            waited.as_secs_f64() * 1e3
        );
        assert_eq!(shmbox::info(&name).unwrap().owner_deaths, 2);
    }

    /// Overwrites the advisory `lock_owner_pid` (offset 68, docs/FORMAT.md).
    fn forge_lock_owner_pid(name: &str, pid: u32) {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(segment_path(name))
            .unwrap();
        file.write_all_at(&pid.to_le_bytes(), 68).unwrap();
    }

    /// Liveness is decided by the kernel lock of the holder's handle, never by
    /// pids, which the system reuses: a dead holder whose recorded pid now names
    /// a live process is still taken over, and a live holder whose recorded pid
    /// names a dead process is never robbed.
    fn recovery_ignores_the_recorded_pid() {
        let name = unique_name("pid-reuse");
        let seg = Segment::create(&name, 64).unwrap();

        let mut holder = Helper::spawn("hold-lock", &[&name]);
        holder.expect("locked");
        holder.kill();
        forge_lock_owner_pid(&name, 1); // as if the pid were reused: pid 1 lives
        let asked = Instant::now();
        let guard = seg.lock().unwrap();
        assert!(asked.elapsed() < Duration::from_millis(100));
        assert_eq!(guard.owner_died().map(|d| d.pid), Some(Some(1)));
        drop(guard);

        let mut holder = Helper::spawn("hold-lock", &[&name]);
        holder.expect("locked");
        let mut gone = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = gone.id();
        gone.wait().unwrap();
        forge_lock_owner_pid(&name, dead_pid);
        assert!(matches!(
            seg.lock_timeout(Duration::from_millis(200)),
            Err(Error::Timeout { .. })
        ));
        assert!(seg.try_lock().unwrap().is_none());
        holder.kill();
    }

    fn writer_killed_mid_write_reports_torn_data() {
        let name = unique_name("midwrite");
        let seg = Segment::create(&name, 64).unwrap();
        seg.write(0, &[1; 64]).unwrap();
        let mut writer = Helper::spawn("hold-mid-write", &[&name]);
        writer.expect("writing");
        let pid = writer.pid();
        writer.kill();

        // Readers neither hang nor return the half-written bytes.
        let asked = Instant::now();
        match seg.read_consistent(0, 64) {
            Err(Error::Inconsistent { generation, .. }) => assert_eq!(generation, 1),
            other => panic!("expected Inconsistent, got {other:?}"),
        }
        assert!(
            asked.elapsed() < SECOND,
            "the reader waited {:?}",
            asked.elapsed()
        );
        let info = shmbox::info(&name).unwrap();
        assert_eq!(info.lock, LockState::Abandoned { pid: Some(pid) });
        assert!(!info.consistent);

        // The next holder is told. Releasing the lock without repairing the data
        // keeps it marked torn.
        let guard = seg.lock().unwrap();
        let died = guard.owner_died().unwrap();
        assert_eq!((died.pid, died.mid_write), (Some(pid), true));
        assert!(!guard.is_consistent());
        assert_eq!(
            guard.data().slice(..32).unwrap().to_vec().unwrap(),
            [0xEE; 32]
        ); // the torn half, visible to the holder
        drop(guard);
        match seg.read(0, 64) {
            Err(e @ Error::Inconsistent { .. }) => {
                assert!(e.to_string().contains("may be torn"), "{e}");
            }
            other => panic!("expected Inconsistent, got {other:?}"),
        }

        // A write repairs it.
        let mut guard = seg.lock().unwrap();
        assert!(guard.owner_died().is_none());
        assert!(!guard.is_consistent());
        guard.write(0, &[2; 64]).unwrap();
        assert_eq!(guard.unlock().unwrap(), 2);
        assert_eq!(seg.read_consistent(0, 64).unwrap().data, vec![2; 64]);
        assert!(shmbox::info(&name).unwrap().consistent);
    }

    fn writer_killed_at_random_moments_never_yields_torn_reads() {
        let name = unique_name("random-kill");
        let seg = Segment::create(&name, 64).unwrap();
        seg.write(0, &record(0)).unwrap();
        let (mut whole, mut torn_reports, mut rounds) = (0u64, 0u64, 0u64);
        let mut delay_seed = 12345u64;
        for _ in 0..20 {
            let mut writer = Helper::spawn("write-records", &[&name]);
            writer.expect("started");
            delay_seed = delay_seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let delay = Duration::from_micros(200 + delay_seed % 20_000);
            let until = Instant::now() + delay;
            while Instant::now() < until {
                match seg.read_consistent(0, 64) {
                    Ok(snap) => {
                        assert!(record_is_whole(&snap.data), "torn read: {:?}", snap.data);
                        whole += 1;
                    }
                    Err(Error::Inconsistent { .. }) => torn_reports += 1,
                    Err(e) => panic!("{e}"),
                }
            }
            writer.kill();
            // After the kill: either whole data or a clear report, quickly.
            let asked = Instant::now();
            match seg.read_consistent(0, 64) {
                Ok(snap) => assert!(record_is_whole(&snap.data)),
                Err(Error::Inconsistent { .. }) => torn_reports += 1,
                Err(e) => panic!("{e}"),
            }
            assert!(asked.elapsed() < SECOND);
            // Repair for the next round, as an application would.
            let mut guard = seg.lock().unwrap();
            if !guard.is_consistent() {
                let v: u64 = guard.read_pod(0).unwrap();
                guard.write(0, &record(v)).unwrap();
            }
            drop(guard);
            rounds += 1;
        }
        assert!(whole > 0);
        eprintln!(
            "    {rounds} kills: {whole} whole reads, {torn_reports} torn states reported, 0 torn reads returned"
        );
    }

    fn wait_for_change_wakes_across_processes() {
        let name = unique_name("notify");
        let seg = Segment::create(&name, 64).unwrap();
        let seen = seg.generation();
        let asked = Instant::now();
        let mut writer = Helper::spawn("write", &[&name, "wake up"]);
        let now = seg.wait_for_change(seen, 20 * SECOND).unwrap();
        assert!(now > seen);
        assert!(asked.elapsed() < 20 * SECOND);
        assert!(seg.read(0, 7).unwrap() == b"wake up");
        writer.finish(10 * SECOND);
        // A generation that already differs returns at once.
        assert_eq!(seg.wait_for_change(seen, Duration::ZERO).unwrap(), now);
    }

    /// Regression: waking "all" with a count of u32::MAX woke only one waiter,
    /// because the kernel reads the count as a signed int.
    fn wait_for_change_wakes_every_waiting_process() {
        let name = unique_name("notify-all");
        let seg = Segment::create(&name, 64).unwrap();
        let mut waiters: Vec<Helper> = (0..3)
            .map(|_| Helper::spawn("wait-change", &[&name]))
            .collect();
        for w in &waiters {
            w.expect("waiting");
        }
        std::thread::sleep(Duration::from_millis(100)); // let them fall asleep
        let written = Instant::now();
        seg.write(0, b"all").unwrap();
        for w in &mut waiters {
            // Well inside their own 60 s timeout.
            assert_eq!(w.line(10 * SECOND), "woke 1");
            w.finish(10 * SECOND);
        }
        eprintln!(
            "    3 sleeping processes woken by one write in {:.1} ms",
            written.elapsed().as_secs_f64() * 1e3
        );
    }

    fn wait_for_change_honours_its_timeout() {
        let name = unique_name("notify-timeout");
        let seg = Segment::create(&name, 64).unwrap();
        let asked = Instant::now();
        match seg.wait_for_change(seg.generation(), Duration::from_millis(200)) {
            Err(e @ Error::Timeout { .. }) => {
                assert!(
                    e.to_string().contains("waiting for a change of segment"),
                    "{e}"
                );
                assert!(
                    e.to_string().contains("no process committed a write"),
                    "{e}"
                );
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
        let waited = asked.elapsed();
        assert!(
            waited >= Duration::from_millis(200),
            "returned early: {waited:?}"
        );
        assert!(waited < 5 * SECOND, "returned late: {waited:?}");
    }

    /// Spin mode: a write that comes while the waiter spins ends the wait.
    fn spinning_wait_sees_a_write_from_another_process() {
        let name = unique_name("notify-spin");
        let seg = SegmentOptions::new()
            .spin_before_sleep(20 * SECOND)
            .create(&name, 64)
            .unwrap();
        let seen = seg.generation();
        let asked = Instant::now();
        let mut writer = Helper::spawn("write", &[&name, "spun"]);
        let now = seg.wait_for_change(seen, 20 * SECOND).unwrap();
        // Seen by the spin itself, not after the 20 s spin ran out.
        assert!(asked.elapsed() < 10 * SECOND, "{:?}", asked.elapsed());
        assert_eq!(now, seen + 1);
        assert_eq!(seg.read(0, 4).unwrap(), b"spun");
        writer.finish(10 * SECOND);
    }

    /// Spin mode: once the spin is over the waiter sleeps, and a write still
    /// wakes it.
    fn spinning_wait_sleeps_after_its_spin_and_is_woken() {
        let name = unique_name("notify-spin-sleep");
        let seg = SegmentOptions::new()
            .spin_before_sleep(Duration::from_millis(1))
            .create(&name, 64)
            .unwrap();
        let writer_handle = Segment::open(&name).unwrap();
        let seen = seg.generation();
        let writer = std::thread::spawn(move || {
            // Long after the 1 ms spin.
            std::thread::sleep(Duration::from_millis(300));
            writer_handle.write(0, b"late").unwrap();
        });
        let asked = Instant::now();
        let now = seg.wait_for_change(seen, 20 * SECOND).unwrap();
        let waited = asked.elapsed();
        assert_eq!(now, seen + 1);
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert!(waited < 10 * SECOND, "{waited:?}");
        writer.join().unwrap();
    }

    /// Spin mode: the timeout bounds the spin too.
    fn spinning_wait_honours_a_shorter_timeout() {
        let name = unique_name("notify-spin-timeout");
        let seg = SegmentOptions::new()
            .spin_before_sleep(30 * SECOND)
            .create(&name, 64)
            .unwrap();
        let asked = Instant::now();
        let outcome = seg.wait_for_change(seg.generation(), Duration::from_millis(200));
        let waited = asked.elapsed();
        assert!(
            matches!(outcome, Err(Error::Timeout { .. })),
            "expected a timeout, got {outcome:?}"
        );
        assert!(
            waited >= Duration::from_millis(200),
            "returned early: {waited:?}"
        );
        assert!(waited < 5 * SECOND, "spun past its timeout: {waited:?}");
    }

    fn until_last_close_is_gone_after_the_last_close() {
        let name = unique_name("ulc-close");
        let seg = Segment::create(&name, 64).unwrap();
        let mut child = Helper::spawn("write", &[&name, "x"]);
        child.expect("done");
        child.finish(10 * SECOND);
        assert!(
            segment_path(&name).exists(),
            "removed while this process holds it"
        );
        assert_eq!(seg.read(0, 1).unwrap(), b"x");
        drop(seg);
        assert!(
            !segment_path(&name).exists(),
            "still there after the last close"
        );
        assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    }

    /// No helper process watches a segment: once its last holder is killed,
    /// the next shmbox call that looks removes it.
    fn until_last_close_is_gone_after_the_last_holder_is_killed() {
        for by in ["reclaim", "list", "info", "open"] {
            let name = unique_name("ulc-kill");
            let _cleanup = Cleanup(name.clone());
            let mut holder = Helper::spawn("create-and-hold", &[&name]);
            holder.expect("ready");
            assert!(segment_path(&name).exists());
            holder.kill();
            assert!(
                segment_path(&name).exists(),
                "nothing removes it on its own (no helper process)"
            );
            let asked = Instant::now();
            match by {
                "reclaim" => {
                    let removed = shmbox::reclaim().unwrap();
                    assert!(removed.iter().any(|n| n.as_str() == name), "{removed:?}");
                }
                "list" => {
                    let listed = shmbox::list().unwrap();
                    assert!(!listed.iter().any(|i| i.name.as_str() == name));
                }
                "info" => assert!(matches!(shmbox::info(&name), Err(Error::NotFound { .. }))),
                _ => assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. }))),
            }
            let took = asked.elapsed();
            assert!(!segment_path(&name).exists(), "{by} left it behind");
            eprintln!(
                "    {by}: removed in {:.2} ms after its last holder was killed",
                took.as_secs_f64() * 1e3
            );
            assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
        }
    }

    fn until_last_close_survives_a_killed_holder_while_another_holds_it() {
        let name = unique_name("ulc-two");
        let mut creator = Helper::spawn("create-and-hold", &[&name]);
        creator.expect("ready");
        let seg = Segment::open(&name).unwrap();
        seg.write(0, b"still here").unwrap();
        creator.kill();
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            segment_path(&name).exists(),
            "removed while this process holds it"
        );
        assert_eq!(seg.read(0, 10).unwrap(), b"still here");
        // A second opener joins the same segment, not a new one.
        let again = Segment::open(&name).unwrap();
        assert_eq!(again.read(0, 10).unwrap(), b"still here");
        drop((seg, again));
        assert!(!segment_path(&name).exists());
    }

    /// A library is a guest: the defaults start no process and install no
    /// signal handler. (Checked in a helper, a process of its own.)
    fn opening_starts_no_process_and_installs_no_signal_handler() {
        let name = unique_name("guest");
        let _cleanup = Cleanup(name.clone());
        let mut helper = Helper::spawn("guest-check", &[&name]);
        helper.expect("children 0 -> 0, sigbus unchanged");
        helper.finish(10 * SECOND);
        assert!(!segment_path(&name).exists());
    }

    /// A prefork server: the parent opens a segment, forks four workers that
    /// keep their copies and use the library, takes the lock and is
    /// SIGKILLed. The lock is recovered at once, although the workers live.
    fn prefork_workers_do_not_keep_a_killed_parent_lock_alive() {
        let name = unique_name("prefork");
        // Last to drop: the workers hold the segment until they are killed.
        let _cleanup = Cleanup(name.clone());
        let seg = Segment::create(&name, 128).unwrap();
        let mut parent = Helper::spawn("prefork", &[&name]);
        let mut workers = Vec::new();
        for _ in 0..4 {
            let line = parent.line(20 * SECOND);
            let mut words = line.split_whitespace();
            assert_eq!(words.next(), Some("worker"), "{line}");
            workers.push(words.next().unwrap().parse::<i32>().unwrap());
            assert_eq!(
                words.next(),
                Some("forked"),
                "a worker used its inherited handle: {line}"
            );
        }
        let kill_workers = Workers(workers.clone());
        parent.expect("locked");
        parent.kill();
        let asked = Instant::now();
        let guard = seg.lock_timeout(5 * SECOND).unwrap();
        let took = asked.elapsed();
        let died = guard.owner_died().expect("the parent died holding it");
        assert_eq!(died.pid, Some(parent.pid()));
        let counted: u64 = (0..4)
            .map(|i| guard.read_pod::<u64>(8 + 8 * i).unwrap())
            .sum();
        drop(guard);
        for &pid in &workers {
            assert!(
                std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "worker {pid} should still be alive"
            );
        }
        eprintln!(
            "    recovered {:.2} ms after the kill, with 4 workers alive",
            took.as_secs_f64() * 1e3
        );
        assert!(took < Duration::from_millis(100), "took {took:?}");
        assert_eq!(counted, 400);
        drop(kill_workers);
    }

    /// SIGKILLs the pids when dropped.
    struct Workers(Vec<i32>);

    impl Drop for Workers {
        fn drop(&mut self) {
            for &pid in &self.0 {
                // SAFETY: kill only sends a signal.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    /// A child made by fork that drops its copy of the handle (and of a
    /// guard) neither removes the segment nor releases the parent's locks.
    fn a_forked_child_dropping_its_copy_leaves_the_parent_alone() {
        let name = unique_name("fork-drop");
        let _cleanup = Cleanup(name.clone());
        let mut helper = Helper::spawn("fork-drop", &[&name]);
        helper.expect("child 0 named true held-by-us true locked true text parent free-after true");
        helper.finish(10 * SECOND);
        assert!(!segment_path(&name).exists(), "gone with its last holder");
    }

    fn persistent_stays_until_removed() {
        let name = unique_name("persistent");
        let _cleanup = Cleanup(name.clone());
        let mut creator = Helper::spawn("create-persistent", &[&name, "600"]);
        creator.expect("created");
        creator.finish(10 * SECOND);
        let seg = Segment::open(&name).unwrap();
        assert_eq!(seg.lifetime(), Lifetime::Persistent);
        assert_eq!(seg.read(0, 10).unwrap(), b"persistent");
        drop(seg);
        assert!(segment_path(&name).exists());
        shmbox::remove(&name).unwrap();
        assert!(!segment_path(&name).exists());
        assert!(matches!(Segment::open(&name), Err(Error::NotFound { .. })));
    }

    fn remove_refuses_an_until_last_close_segment_in_use() {
        let name = unique_name("remove-busy");
        let mut holder = Helper::spawn("create-and-hold", &[&name]);
        holder.expect("ready");
        match shmbox::remove(&name) {
            Err(e @ Error::Busy { .. }) => {
                assert!(e.to_string().contains("another process has it open"), "{e}")
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        assert!(segment_path(&name).exists());
        holder.kill();
        // Nobody holds it now, so removing it is allowed.
        shmbox::remove(&name).unwrap();
        assert!(!segment_path(&name).exists());
    }

    fn concurrent_open_and_close_leave_nothing_behind() {
        let name = unique_name("churn");
        let _cleanup = Cleanup(name.clone());
        let mut helpers: Vec<Helper> = (0..4)
            .map(|_| Helper::spawn("churn", &[&name, "200"]))
            .collect();
        for h in &mut helpers {
            h.expect("done");
            h.finish(30 * SECOND);
        }
        wait_until("nothing left behind", 5 * SECOND, || {
            !segment_path(&name).exists()
        });
    }

    fn is_root() -> bool {
        // SAFETY: geteuid takes no arguments and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    const NOBODY: u32 = 65534;

    fn segment_of_another_user_is_refused() {
        if !is_root() {
            eprintln!("    SKIPPED: needs root to start a helper as another user");
            return;
        }
        let name = unique_name("foreign");
        let _cleanup = Cleanup(name.clone());
        // Mode 0600: root opens it all the same (it bypasses permissions).
        let mut creator = Helper::spawn_with("create-persistent", &[&name, "600"], |c| {
            use std::os::unix::process::CommandExt;
            c.uid(NOBODY).gid(NOBODY);
        });
        creator.expect("created");
        creator.finish(10 * SECOND);
        match Segment::open(&name) {
            Err(
                e @ Error::ForeignOwner {
                    owner_uid: NOBODY,
                    our_uid: 0,
                    ..
                },
            ) => {
                assert!(e.to_string().contains("belongs to uid 65534"), "{e}");
            }
            other => panic!("expected ForeignOwner, got {other:?}"),
        }
        let trusted = SegmentOptions::new()
            .allow_other_owner(true)
            .open(&name)
            .unwrap();
        assert_eq!(trusted.read(0, 10).unwrap(), b"persistent");
        drop(trusted);
        shmbox::remove(&name).unwrap();
    }

    fn segment_of_root_is_permission_denied_to_another_user() {
        if !is_root() {
            eprintln!("    SKIPPED: needs root to start a helper as another user");
            return;
        }
        let name = unique_name("denied");
        let seg = Segment::create(&name, 64).unwrap();
        let mut other = Helper::spawn_with("try-open", &[&name], |c| {
            use std::os::unix::process::CommandExt;
            c.uid(NOBODY).gid(NOBODY);
        });
        let line = other.line(10 * SECOND);
        assert!(
            line.starts_with("err permission denied for segment"),
            "{line}"
        );
        other.finish(10 * SECOND);
        drop(seg);
    }

    fn info_and_list_describe_segments() {
        let name = unique_name("info");
        let seg = Segment::create(&name, 100).unwrap();
        seg.write(0, b"abc").unwrap();
        let info = shmbox::info(&name).unwrap();
        assert_eq!(info.size, 100);
        assert_eq!(info.generation, 1);
        assert_eq!(info.lifetime, Lifetime::UntilLastClose);
        assert_eq!(info.lock, LockState::Free);
        assert_eq!(info.last_writer_pid, Some(std::process::id()));
        assert_eq!(info.creator_pid, Some(std::process::id()));
        assert_eq!(info.mode, Some(0o600));
        assert!(info.last_write.is_some());
        assert!(
            shmbox::list()
                .unwrap()
                .iter()
                .any(|i| i.name.as_str() == name)
        );

        let mut holder = Helper::spawn("hold-lock", &[&name]);
        holder.expect("locked");
        assert_eq!(
            shmbox::info(&name).unwrap().lock,
            LockState::Held {
                pid: Some(holder.pid())
            }
        );
        let pid = holder.pid();
        holder.kill();
        assert_eq!(
            shmbox::info(&name).unwrap().lock,
            LockState::Abandoned { pid: Some(pid) }
        );
        drop(seg.lock().unwrap());
        assert_eq!(shmbox::info(&name).unwrap().lock, LockState::Free);
    }
}
