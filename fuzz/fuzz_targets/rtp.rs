#![no_main]
//! Fuzz target: `streamlab::fuzzing::rtp` (its body is there, replayed
//! over fuzz/corpus/rtp by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::rtp(data));
