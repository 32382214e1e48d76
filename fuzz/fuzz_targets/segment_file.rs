//! A file of arbitrary bytes and size under a segment's name, opened and put
//! through arbitrary operations (see crates/shmbox-fuzz).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shmbox_fuzz::segment_file(data));
