#![no_main]
//! Fuzz target: `streamlab::fuzzing::client_connection` (its body is there, replayed
//! over fuzz/corpus/client_connection by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::client_connection(data));
