#![no_main]
//! Fuzz target: `streamlab::fuzzing::rtcp` (its body is there, replayed
//! over fuzz/corpus/rtcp by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::rtcp(data));
