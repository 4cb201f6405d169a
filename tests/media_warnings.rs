//! A damaged frame is skipped with exactly one warning naming its index and
//! byte offset. Alone in its test binary: tracing caches whether a log line
//! is wanted per call site across threads, so a subscriber scoped to one
//! test may miss lines while other tests run in parallel.

use std::io::Write;
use std::sync::{Arc, Mutex};

use streamlab::media::MjpegFile;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// A lab file of `n` tiny JPEGs; returns it and each frame's offset.
fn lab_file(n: usize) -> (Vec<u8>, Vec<usize>) {
    let jpeg = [0xff, 0xd8, 1, 2, 3, 0xff, 0xd9];
    let mut bytes = Vec::new();
    let mut offsets = Vec::new();
    for _ in 0..n {
        offsets.push(bytes.len());
        bytes.extend_from_slice(format!("{:05}", jpeg.len()).as_bytes());
        bytes.extend_from_slice(&jpeg);
    }
    (bytes, offsets)
}

#[test]
fn each_damaged_frame_gets_one_warning_with_index_and_offset() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    let (mut bytes, offsets) = lab_file(20);
    bytes[offsets[5] + 1] = b'x'; // letters in the length
    bytes[offsets[12] + 5] = 0; // no SOI
    bytes.truncate(bytes.len() - 2); // last frame cut short
    let clip = MjpegFile::from_bytes("damaged.Mjpeg", bytes.into()).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(clip.index_all().unwrap(), 17);
        // Reading again warns no more.
        assert_eq!(clip.index_all().unwrap(), 17);
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 3, "{text}");
    for (w, (index, offset)) in
        warnings
            .iter()
            .zip([(5, offsets[5]), (12, offsets[12]), (19, offsets[19])])
    {
        assert!(
            w.contains(&format!("frame {index}")) && w.contains(&offset.to_string()),
            "{w}"
        );
    }
}
