#![no_main]
//! Fuzz target: `streamlab::fuzzing::mjpeg_file` (its body is there, replayed
//! over fuzz/corpus/mjpeg_file by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::mjpeg_file(data));
