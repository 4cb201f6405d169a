#![no_main]
//! Fuzz target: `streamlab::fuzzing::auth` (its body is there, replayed
//! over fuzz/corpus/auth by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::auth(data));
