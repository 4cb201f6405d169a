//! Replays every committed fuzz corpus (fuzz/corpus/<target>/*) through the
//! same functions the fuzz targets call (`streamlab::fuzzing`), so that
//! `cargo test` keeps every input the fuzzer found interesting, and every
//! crash it found once, passing without cargo-fuzz or a nightly toolchain.

use std::fs;
use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("rtsp_decoder", streamlab::fuzzing::rtsp_decoder),
    ("server_connection", streamlab::fuzzing::server_connection),
    ("client_connection", streamlab::fuzzing::client_connection),
    ("sdp", streamlab::fuzzing::sdp),
    ("rtp", streamlab::fuzzing::rtp),
    ("interleaved", streamlab::fuzzing::interleaved),
    ("rtcp", streamlab::fuzzing::rtcp),
    ("auth", streamlab::fuzzing::auth),
    ("mjpeg_file", streamlab::fuzzing::mjpeg_file),
];

/// Runs every file of fuzz/corpus/<target> through `body`; returns how many.
fn replay(target: &str, body: Target) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = fs::read(&path).unwrap();
        // Name the input that failed: the panic inside says what.
        let ok = std::panic::catch_unwind(|| body(&data));
        assert!(ok.is_ok(), "{target}: {} fails", path.display());
        n += 1;
    }
    n
}

#[test]
fn every_target_has_a_corpus_and_every_input_passes() {
    for (target, body) in TARGETS {
        let n = replay(target, *body);
        assert!(n > 0, "fuzz/corpus/{target} is empty");
    }
}

#[test]
fn every_fuzz_target_is_replayed() {
    // A target added under fuzz/fuzz_targets without a line above would
    // go unreplayed.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut found: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            p.file_stem().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    found.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}
