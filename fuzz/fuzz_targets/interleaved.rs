#![no_main]
//! Fuzz target: `streamlab::fuzzing::interleaved` (its body is there, replayed
//! over fuzz/corpus/interleaved by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::interleaved(data));
