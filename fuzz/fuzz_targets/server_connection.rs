#![no_main]
//! Fuzz target: `streamlab::fuzzing::server_connection` (its body is there, replayed
//! over fuzz/corpus/server_connection by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::server_connection(data));
