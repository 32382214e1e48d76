//! The `shmbox` command's parsing of sizes and offsets (see crates/shmbox-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmbox_fuzz::cli_sizes(data));
