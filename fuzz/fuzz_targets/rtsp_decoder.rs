#![no_main]
//! Fuzz target: `streamlab::fuzzing::rtsp_decoder` (its body is there, replayed
//! over fuzz/corpus/rtsp_decoder by tests/fuzz_corpora.rs).

libfuzzer_sys::fuzz_target!(|data: &[u8]| streamlab::fuzzing::rtsp_decoder(data));
