//! The parts of the `shmbox` command that other crates test directly: the
//! parsing of sizes and offsets (fuzzed by `crates/shmbox-fuzz`).
//!
//! The command itself is the binary `shmbox` (src/main.rs).

pub mod size;
