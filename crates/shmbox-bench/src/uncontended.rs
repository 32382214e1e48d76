//! Scenario 1: uncontended lock + write 64 B + unlock, one process.

use std::hint::black_box;

use shmbox::Segment;

use crate::mapping::SharedMap;
use crate::peers::{FutexLock, OfdLock, RobustMutex, write_64};

/// Something to time: `run(n)` does the operation `n` times.
pub trait Scenario {
    fn name(&self) -> &'static str;
    fn run(&mut self, iterations: u64);
}

const PAYLOAD: [u8; 64] = [0xA5; 64];

/// shmbox: `Segment::write` of 64 bytes (lock, copy, commit, unlock).
pub struct ShmboxWrite(Segment, &'static str);

impl ShmboxWrite {
    pub fn new() -> shmbox::Result<ShmboxWrite> {
        let seg = Segment::create(crate::unique_name("uncontended"), 4096)?;
        Ok(ShmboxWrite(seg, "shmbox"))
    }
}

impl Scenario for ShmboxWrite {
    fn name(&self) -> &'static str {
        self.1
    }
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            black_box(self.0.write(0, black_box(&PAYLOAD)).unwrap());
        }
    }
}

/// shmbox through its guard: `lock()`, `guard.write` of 64 bytes, drop
/// (commit, unlock). Several steps under one lock cost what one `write`
/// costs, or nearly.
pub struct ShmboxGuard(Segment);

impl ShmboxGuard {
    pub fn new() -> shmbox::Result<ShmboxGuard> {
        Ok(ShmboxGuard(Segment::create(
            crate::unique_name("uncontended-guard"),
            4096,
        )?))
    }
}

/// The scenario's name, for the report to find it by.
pub const SHMBOX_GUARD: &str = "shmbox, through the guard (lock, guard.write, drop)";

impl Scenario for ShmboxGuard {
    fn name(&self) -> &'static str {
        SHMBOX_GUARD
    }
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            let mut guard = self.0.lock().unwrap();
            black_box(guard.write(0, black_box(&PAYLOAD)).unwrap());
        }
    }
}

/// The floor: a bare futex mutex in a shared mapping.
pub struct FutexFloor(SharedMap);

impl FutexFloor {
    pub fn new() -> std::io::Result<FutexFloor> {
        Ok(FutexFloor(SharedMap::create("futex", 4096)?))
    }
}

impl Scenario for FutexFloor {
    fn name(&self) -> &'static str {
        "minimal futex lock (floor)"
    }
    fn run(&mut self, n: u64) {
        let lock = FutexLock(self.0.u32_at(0));
        for _ in 0..n {
            lock.lock();
            write_64(&self.0, 64, black_box(&PAYLOAD));
            lock.unlock();
        }
    }
}

/// A glibc robust, process-shared pthread mutex in a shared mapping.
pub struct RobustPthread(SharedMap, RobustMutex);

impl RobustPthread {
    pub fn new() -> std::io::Result<RobustPthread> {
        let map = SharedMap::create("pthread", 4096)?;
        let mutex = RobustMutex::init(&map)?;
        Ok(RobustPthread(map, mutex))
    }
}

impl Scenario for RobustPthread {
    fn name(&self) -> &'static str {
        "glibc robust pthread mutex"
    }
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.1.lock();
            write_64(&self.0, RobustMutex::SIZE, black_box(&PAYLOAD));
            self.1.unlock();
        }
    }
}

/// The raw_sync crate's Mutex in a shared mapping.
/// (The mapping is kept alive under the lock, which lives in it.)
pub struct RawSync(
    Box<dyn raw_sync::locks::LockImpl>,
    #[allow(dead_code)] SharedMap,
);

impl RawSync {
    pub fn new() -> std::io::Result<RawSync> {
        use raw_sync::locks::{LockInit, Mutex};
        let map = SharedMap::create("raw-sync", 4096)?;
        #[allow(unsafe_code)]
        // SAFETY: the lock and its data both lie in the mapping, which lives
        // as long as the lock (they are dropped together, lock first).
        let (lock, _) = unsafe { Mutex::new(map.ptr(), map.ptr().add(256)) }
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(RawSync(lock, map))
    }
}

impl Scenario for RawSync {
    fn name(&self) -> &'static str {
        "raw_sync Mutex"
    }
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            let guard = self.0.lock().unwrap();
            #[allow(unsafe_code)]
            // SAFETY: the guard's data pointer is 256 bytes into the 4 KiB mapping.
            unsafe {
                std::ptr::copy_nonoverlapping(PAYLOAD.as_ptr(), *guard, 64)
            };
            drop(guard);
        }
    }
}

/// An OFD file lock around a write to the mapping.
pub struct OfdFileLock(SharedMap);

impl OfdFileLock {
    pub fn new() -> std::io::Result<OfdFileLock> {
        Ok(OfdFileLock(SharedMap::create("ofd", 4096)?))
    }
}

impl Scenario for OfdFileLock {
    fn name(&self) -> &'static str {
        "fcntl OFD lock"
    }
    fn run(&mut self, n: u64) {
        let lock = OfdLock::new(&self.0);
        for _ in 0..n {
            lock.lock();
            write_64(&self.0, 64, black_box(&PAYLOAD));
            lock.unlock();
        }
    }
}

/// All of scenario 1, the floor first.
pub fn all() -> Result<Vec<Box<dyn Scenario>>, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    Ok(vec![
        Box::new(FutexFloor::new().map_err(|e| err(&e))?),
        Box::new(ShmboxWrite::new().map_err(|e| err(&e))?),
        Box::new(ShmboxGuard::new().map_err(|e| err(&e))?),
        Box::new(RobustPthread::new().map_err(|e| err(&e))?),
        Box::new(RawSync::new().map_err(|e| err(&e))?),
        Box::new(OfdFileLock::new().map_err(|e| err(&e))?),
    ])
}
