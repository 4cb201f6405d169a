#![no_main]
//! Fuzz target: `streamlab::fuzzing::sdp` (its body is there, replayed
//! over fuzz/corpus/sdp by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::sdp(data));
