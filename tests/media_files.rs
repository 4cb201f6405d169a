//! Media sources against real files: the lab's movie.Mjpeg, the same frames
//! re-framed (6 digits, raw), damaged copies, the test pattern and the
//! bundled sample clip.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use streamlab::media::jpeg;
use streamlab::media::pattern::{encode_jpeg, make_clip, pattern_rgb, write_frame};
use streamlab::media::{Framing, MediaError, MjpegFile};

const MOVIE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/media/movie.Mjpeg");
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sample.mjpeg");

/// A reference lab client reads datagrams with recv(20480); 12 bytes are the
/// RTP header.
const LAB_CLIENT_MAX_FRAME: usize = 20480 - 12;

fn movie_bytes() -> &'static [u8] {
    static BYTES: LazyLock<Vec<u8>> =
        LazyLock::new(|| std::fs::read(MOVIE).expect("the lab's movie.Mjpeg is in shared/media"));
    &BYTES
}

/// The movie's frames split by hand (5-digit lengths), independent of the
/// code under test.
fn movie_frames() -> &'static [Vec<u8>] {
    static FRAMES: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
        let bytes = movie_bytes();
        let mut frames = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let len: usize = std::str::from_utf8(&bytes[pos..pos + 5])
                .unwrap()
                .parse()
                .unwrap();
            frames.push(bytes[pos + 5..pos + 5 + len].to_vec());
            pos += 5 + len;
        }
        frames
    });
    &FRAMES
}

fn framed(frames: &[Vec<u8>], framing: Framing) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        write_frame(&mut out, f, framing).unwrap();
    }
    out
}

/// A file in the temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> TempFile {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "streamlab-media-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn all_frames(file: &MjpegFile) -> Vec<Vec<u8>> {
    (0..).map_while(|n| file.frame(n).unwrap()).collect()
}

#[test]
fn movie_has_500_lab_frames_of_384x288() {
    let movie = MjpegFile::open(Path::new(MOVIE)).unwrap();
    assert_eq!(movie.name(), "movie.Mjpeg");
    assert_eq!(movie.framing(), Framing::Lab { digits: 5 });
    assert_eq!(movie.dimensions(), Some((384, 288)));
    // Opening indexes only the first frame.
    assert_eq!(movie.frame_count(), None);

    let bytes = movie_bytes();
    let len: usize = std::str::from_utf8(&bytes[..5]).unwrap().parse().unwrap();
    assert_eq!(movie.frame(0).unwrap().unwrap(), &bytes[5..5 + len]);

    assert_eq!(movie.index_all().unwrap(), 500);
    assert_eq!(movie.frame_count(), Some(500));
    assert!(movie.skipped().is_empty());
    let frames = all_frames(&movie);
    assert_eq!(frames, movie_frames());
    for (n, f) in frames.iter().enumerate() {
        assert!(jpeg::is_complete(f), "frame {n}");
    }
    assert_eq!(movie.frame(500).unwrap(), None);
}

#[test]
fn movie_frames_are_baseline_444_as_documented() {
    for f in movie_frames() {
        let info = jpeg::inspect(f).unwrap();
        assert!(info.baseline);
        assert_eq!((info.width, info.height), (384, 288));
        let ids: Vec<_> = info.components.iter().map(|c| c.id).collect();
        assert_eq!(ids, [0, 1, 2]);
        assert!(info.components.iter().all(|c| (c.h, c.v) == (1, 1)));
    }
}

#[test]
fn six_digit_and_raw_files_give_the_same_frames() {
    let frames = movie_frames();
    for (framing, name) in [
        (Framing::Lab { digits: 6 }, "six.Mjpeg"),
        (Framing::Raw, "raw.mjpg"),
    ] {
        let file = TempFile::new(name, &framed(frames, framing));
        let clip = MjpegFile::open(&file.0).unwrap();
        assert_eq!(clip.framing(), framing);
        assert_eq!(clip.dimensions(), Some((384, 288)));
        assert_eq!(clip.index_all().unwrap(), 500, "{framing}");
        assert_eq!(all_frames(&clip), frames, "{framing}");
        assert!(clip.skipped().is_empty());
    }
}

#[test]
fn framing_comes_from_the_bytes_not_the_name() {
    let file = TempFile::new(
        "looks-lab.Mjpeg",
        &framed(&movie_frames()[..3], Framing::Raw),
    );
    let clip = MjpegFile::open(&file.0).unwrap();
    assert_eq!(clip.framing(), Framing::Raw);
    assert_eq!(clip.index_all().unwrap(), 3);
}

#[test]
fn sessions_can_share_one_file_across_threads() {
    let file = TempFile::new("shared.mjpg", &framed(movie_frames(), Framing::Raw));
    let clip = Arc::new(MjpegFile::open(&file.0).unwrap());
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let clip = Arc::clone(&clip);
            std::thread::spawn(move || all_frames(&clip))
        })
        .collect();
    for r in readers {
        assert_eq!(r.join().unwrap(), movie_frames());
    }
}

/// A JPEG that carries a whole second JPEG (a thumbnail) inside an EXIF
/// APP1 segment, as cameras write them.
fn jpeg_with_thumbnail(main: &[u8], thumb: &[u8]) -> Vec<u8> {
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(thumb);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&u16::try_from(app1.len() + 2).unwrap().to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&main[2..]);
    out
}

#[test]
fn raw_jpeg_with_exif_thumbnail_is_one_frame() {
    let frames = movie_frames();
    let camera = jpeg_with_thumbnail(&frames[0], &frames[1]);
    // Still a JPEG any decoder shows.
    let img = image::load_from_memory(&camera).unwrap();
    assert_eq!((img.width(), img.height()), (384, 288));

    let bytes = framed(&[camera.clone(), frames[2].clone()], Framing::Raw);
    let clip = MjpegFile::from_bytes("camera.mjpg", bytes.into()).unwrap();
    assert_eq!(clip.index_all().unwrap(), 2);
    assert_eq!(clip.frame(0).unwrap().unwrap(), camera);
    assert_eq!(clip.frame(1).unwrap().unwrap(), frames[2]);
    assert!(clip.skipped().is_empty());
}

#[test]
fn damaged_lab_frames_are_skipped_once_each() {
    let frames = movie_frames();
    let mut bytes = framed(frames, Framing::Lab { digits: 5 });
    let offset_of = |n: usize| frames[..n].iter().map(|f| 5 + f.len()).sum::<usize>();
    // Letters in the length digits of frame 100, no SOI in frame 250, and
    // the last frame cut short.
    let (o100, o250, o499) = (offset_of(100), offset_of(250), offset_of(499));
    bytes[o100 + 1..o100 + 3].copy_from_slice(b"ab");
    bytes[o250 + 5] = 0x00;
    bytes.truncate(bytes.len() - 100);
    let file = TempFile::new("damaged.Mjpeg", &bytes);

    // One warning per skipped frame: tests/media_warnings.rs (alone in its
    // binary, since tracing caches callsite interest across threads).
    let clip = MjpegFile::open(&file.0).unwrap();
    assert_eq!(clip.index_all().unwrap(), 497);
    let skipped = clip.skipped();
    let found: Vec<_> = skipped.iter().map(|s| (s.file_index, s.offset)).collect();
    assert_eq!(
        found,
        [(100, o100 as u64), (250, o250 as u64), (499, o499 as u64)]
    );
    assert!(
        skipped[0].reason.contains("not 5 ASCII digits"),
        "{skipped:?}"
    );
    assert!(skipped[1].reason.contains("FF D8"), "{skipped:?}");
    assert!(skipped[2].reason.contains("truncated"), "{skipped:?}");

    let expected: Vec<_> = frames
        .iter()
        .enumerate()
        .filter(|(n, _)| ![100, 250, 499].contains(n))
        .map(|(_, f)| f.clone())
        .collect();
    assert_eq!(all_frames(&clip), expected);
}

#[test]
fn damaged_raw_frames_are_skipped_once_each() {
    let frames = movie_frames();
    let mut bytes = framed(frames, Framing::Raw);
    let offset_of = |n: usize| frames[..n].iter().map(Vec::len).sum::<usize>();
    let (o10, o499) = (offset_of(10), offset_of(499));
    // Frame 10 loses its SOI, so it reads as garbage up to frame 11.
    bytes[o10 + 1] = 0x00;
    bytes.truncate(bytes.len() - 1);
    let clip = MjpegFile::from_bytes("damaged.mjpg", bytes.into()).unwrap();
    assert_eq!(clip.index_all().unwrap(), 498);
    let found: Vec<_> = clip
        .skipped()
        .iter()
        .map(|s| (s.file_index, s.offset))
        .collect();
    assert_eq!(found, [(10, o10 as u64), (499, o499 as u64)]);
    assert_eq!(clip.frame(10).unwrap().unwrap(), frames[11]);
    assert_eq!(clip.frame(497).unwrap().unwrap(), frames[498]);
}

#[test]
fn empty_and_text_files_are_refused_clearly() {
    let empty = TempFile::new("empty.Mjpeg", b"");
    let err = MjpegFile::open(&empty.0).unwrap_err();
    assert!(matches!(err, MediaError::NoFrames { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&*empty.0.to_string_lossy()), "{msg}");
    assert!(msg.contains("is it an MJPEG file?"), "{msg}");

    let text = TempFile::new("notes.Mjpeg", b"SETUP movie.Mjpeg RTSP/1.0\nCSeq: 1\n");
    let err = MjpegFile::open(&text.0).unwrap_err();
    assert!(matches!(err, MediaError::UnknownFraming { .. }), "{err:?}");
    assert!(err.to_string().contains(&*text.0.to_string_lossy()));

    let missing = Path::new("/nonexistent/dir/movie.Mjpeg");
    let err = MjpegFile::open(missing).unwrap_err();
    assert!(matches!(err, MediaError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/dir/movie.Mjpeg"));

    // Length digits with nothing valid behind them.
    let junk = MjpegFile::from_bytes("junk", b"00010\xFF\xD8broken".to_vec().into());
    assert!(matches!(junk, Err(MediaError::NoFrames { .. })), "{junk:?}");
}

#[test]
fn pattern_frames_decode_at_the_requested_size_and_move() {
    for (w, h) in [(320, 240), (1920, 1080), (33, 17)] {
        let decode = |i| {
            let jpeg = encode_jpeg(&pattern_rgb(i, w, h), 70).unwrap();
            assert!(jpeg::inspect(&jpeg).unwrap().baseline);
            image::load_from_memory(&jpeg).unwrap().to_rgb8()
        };
        let (a, b) = (decode(0), decode(1));
        assert_eq!(a.dimensions(), (w, h));
        assert_ne!(a, b, "{w}x{h}");
    }
}

#[test]
fn bundled_sample_is_200_lab_frames_of_320x240() {
    let sample = MjpegFile::from_bytes("sample.mjpeg", streamlab::SAMPLE_CLIP.into()).unwrap();
    assert_eq!(sample.framing(), Framing::Lab { digits: 5 });
    assert_eq!(sample.dimensions(), Some((320, 240)));
    assert_eq!(sample.index_all().unwrap(), 200);
    for f in all_frames(&sample) {
        assert!(f.len() <= LAB_CLIENT_MAX_FRAME, "{} bytes", f.len());
    }
}

/// Writes assets/sample.mjpeg; run with
/// `cargo test --test media_files -- --ignored regenerate_sample_clip`.
#[test]
#[ignore = "rewrites assets/sample.mjpeg"]
fn regenerate_sample_clip() {
    let mut out = Vec::new();
    let written = make_clip(&mut out, 200, 320, 240, 70, Framing::Lab { digits: 5 }).unwrap();
    assert_eq!(written, out.len() as u64);
    std::fs::write(SAMPLE, &out).unwrap();
    println!("wrote {written} bytes to {SAMPLE}");
}

/// Small valid clips to mutate in the property tests.
fn small_clips() -> &'static [Vec<u8>; 2] {
    static CLIPS: LazyLock<[Vec<u8>; 2]> = LazyLock::new(|| {
        let clip = |framing| {
            let mut out = Vec::new();
            make_clip(&mut out, 3, 24, 16, 50, framing).unwrap();
            out
        };
        [clip(Framing::Lab { digits: 5 }), clip(Framing::Raw)]
    });
    &CLIPS
}

/// Everything a server does with a file; must not panic on any input.
fn exercise(bytes: Vec<u8>) {
    if let Ok(clip) = MjpegFile::from_bytes("fuzz", bytes.into()) {
        let count = clip.index_all().unwrap();
        assert_eq!(clip.frame_count(), Some(count));
        for n in 0..count {
            let frame = clip.frame(n).unwrap().unwrap();
            assert!(jpeg::is_complete(&frame));
            let _ = jpeg::inspect(&frame);
        }
        assert_eq!(clip.frame(count).unwrap(), None);
        let _ = clip.skipped();
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(bytes);
    }

    #[test]
    fn arbitrary_bytes_after_a_header_never_panic(
        raw in any::<bool>(),
        digits in 1usize..=10,
        tail in prop::collection::vec(
            prop_oneof![Just(0xFFu8), Just(0xD8), Just(0xD9), Just(0xDA), Just(b'0'), any::<u8>()],
            0..512,
        ),
    ) {
        let mut bytes = if raw { vec![0xFF, 0xD8] } else { [vec![b'0'; digits], vec![0xFF, 0xD8]].concat() };
        bytes.extend(tail);
        exercise(bytes);
    }

    #[test]
    fn mutated_clips_never_panic(
        which in 0usize..2,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
        cut in any::<prop::sample::Index>(),
        do_cut in any::<bool>(),
    ) {
        let mut bytes = small_clips()[which].clone();
        for (at, value, kind) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = value,
                1 => bytes.insert(i, value),
                _ => { bytes.remove(i); }
            }
        }
        if do_cut && !bytes.is_empty() {
            let len = cut.index(bytes.len());
            bytes.truncate(len);
        }
        exercise(bytes);
    }
}
