//! Recording a stream as it arrives: each frame's JPEG, exactly as it
//! came off the wire (reassembled, never decoded and encoded again),
//! appended to a `.Mjpeg` file in the lab's framing (or raw concatenated
//! JPEG), on a thread of its own so that a slow disk never holds up the
//! player.
//!
//! The file is always one that `streamlab serve` (and the lab's
//! VideoStream.py) can read back: each frame goes out in one write of its
//! length and bytes, and stopping (the user, Ctrl-C, the stream ending)
//! lets the frame being written finish. A full disk or another write
//! error stops the recording, says so once, and playback goes on.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::media::Framing;
use crate::media::pattern::write_frame;

/// Frames waiting for the disk before new ones are dropped (and counted):
/// seconds of video at the usual rates.
const QUEUE: usize = 256;

/// Why a recording could not start, or stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("cannot record to {path}: {reason}")]
    Create { path: PathBuf, reason: String },
    #[error(
        "the disk is full: the recording {path} stopped after {frames} frames (they play back); playback goes on"
    )]
    DiskFull { path: PathBuf, frames: u64 },
    #[error(
        "cannot write to {path}: {reason}; the recording stopped after {frames} frames; playback goes on"
    )]
    Write {
        path: PathBuf,
        frames: u64,
        reason: String,
    },
}

/// What a recording came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub path: PathBuf,
    pub framing: Framing,
    pub frames: u64,
    pub bytes: u64,
    /// Frames not written: the disk was too slow, or (lab framing) too big
    /// for the length's digits.
    pub skipped: u64,
    pub error: Option<RecordError>,
}

/// A recording in progress. Dropping it finishes the file.
pub struct Recorder {
    tx: Option<Sender<Arc<Vec<u8>>>>,
    errors: Receiver<RecordError>,
    thread: Option<JoinHandle<RecordSummary>>,
    dropped: u64,
}

impl Recorder {
    /// Create (or truncate) `path` now, so that a path that cannot be
    /// written is said at once.
    pub fn start(path: &Path, framing: Framing) -> Result<Recorder, RecordError> {
        let file = File::create(path).map_err(|e| RecordError::Create {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        let (err_tx, errors) = crossbeam_channel::bounded(1);
        let path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("streamlab-record".into())
            .spawn(move || write_all(file, path, framing, rx, err_tx))
            .map_err(|e| RecordError::Create {
                path: PathBuf::new(),
                reason: format!("no thread to write with: {e}"),
            })?;
        Ok(Recorder {
            tx: Some(tx),
            errors,
            thread: Some(thread),
            dropped: 0,
        })
    }

    /// Append a frame; never waits (a frame the disk cannot take in time
    /// is counted as skipped).
    pub fn frame(&mut self, jpeg: Arc<Vec<u8>>) {
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_)) = tx.try_send(jpeg)
        {
            self.dropped += 1;
        }
    }

    /// The error that stopped the recording, once, when it happens.
    pub fn error(&self) -> Option<RecordError> {
        self.errors.try_recv().ok()
    }

    /// Write what is queued, close the file and say what it holds.
    pub fn finish(mut self) -> RecordSummary {
        self.finish_inner()
    }

    fn finish_inner(&mut self) -> RecordSummary {
        self.tx = None;
        let mut summary = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(s)) => s,
            _ => RecordSummary {
                path: PathBuf::new(),
                framing: Framing::Raw,
                frames: 0,
                bytes: 0,
                skipped: 0,
                error: None,
            },
        };
        summary.skipped += self.dropped;
        summary
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish_inner();
        }
    }
}

fn write_all(
    mut file: File,
    path: PathBuf,
    framing: Framing,
    frames: Receiver<Arc<Vec<u8>>>,
    errors: Sender<RecordError>,
) -> RecordSummary {
    let mut s = RecordSummary {
        path: path.clone(),
        framing,
        frames: 0,
        bytes: 0,
        skipped: 0,
        error: None,
    };
    let mut record = Vec::new();
    for jpeg in frames.iter() {
        if s.error.is_some() {
            s.skipped += 1;
            continue;
        }
        record.clear();
        if write_frame(&mut record, &jpeg, framing).is_err() {
            // Too big for the lab's length digits: the rest still fit.
            s.skipped += 1;
            continue;
        }
        // One write of the whole frame: what is on disk is always whole
        // frames, but for a frame cut short by the disk itself.
        match file.write_all(&record) {
            Ok(()) => {
                s.frames += 1;
                s.bytes += record.len() as u64;
            }
            Err(e) => {
                let error = if e.kind() == io::ErrorKind::StorageFull {
                    RecordError::DiskFull {
                        path: path.clone(),
                        frames: s.frames,
                    }
                } else {
                    RecordError::Write {
                        path: path.clone(),
                        frames: s.frames,
                        reason: e.to_string(),
                    }
                };
                let _ = errors.try_send(error.clone());
                s.error = Some(error);
                s.skipped += 1;
            }
        }
    }
    if s.error.is_none()
        && let Err(e) = file.sync_all().or_else(ignore_unsyncable)
    {
        s.error = Some(RecordError::Write {
            path,
            frames: s.frames,
            reason: e.to_string(),
        });
    }
    s
}

/// Devices such as /dev/null take data but cannot be synced.
fn ignore_unsyncable(e: io::Error) -> io::Result<()> {
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported => Ok(()),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MjpegFile;

    fn jpeg(n: u8, len: usize) -> Arc<Vec<u8>> {
        let mut v = vec![0xFF, 0xD8];
        v.extend(std::iter::repeat_n(n, len));
        v.extend([0xFF, 0xD9]);
        Arc::new(v)
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("streamlab-record-{}-{name}", std::process::id()))
    }

    #[test]
    fn frames_go_to_disk_in_either_framing_as_they_came() {
        for framing in [Framing::Lab { digits: 5 }, Framing::Raw] {
            let path = temp(&format!("{framing:?}").replace(' ', ""));
            let mut r = Recorder::start(&path, framing).unwrap();
            for n in 0..5 {
                r.frame(jpeg(n, 100 + usize::from(n)));
            }
            let s = r.finish();
            assert_eq!(
                (s.frames, s.skipped, s.error.clone()),
                (5, 0, None),
                "{s:?}"
            );
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(s.bytes, bytes.len() as u64);
            if framing == Framing::Raw {
                assert_eq!(&bytes[..2], &[0xFF, 0xD8]);
            } else {
                assert_eq!(&bytes[..5], b"00104");
            }
            let _ = std::fs::remove_file(&path);
        }
    }

    #[test]
    fn a_lab_recording_reads_back_frame_for_frame() {
        let path = temp("readback.mjpeg");
        let mut r = Recorder::start(&path, Framing::Lab { digits: 5 }).unwrap();
        let sent: Vec<_> = (0..3).map(|n| jpeg(n, 50)).collect();
        for f in &sent {
            r.frame(f.clone());
        }
        r.finish();
        let file = MjpegFile::open(&path).unwrap();
        for (i, f) in sent.iter().enumerate() {
            assert_eq!(file.frame(i).unwrap().as_deref(), Some(f.as_slice()));
        }
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_frame_too_big_for_five_digits_is_skipped_and_the_rest_recorded() {
        let path = temp("big.mjpeg");
        let mut r = Recorder::start(&path, Framing::Lab { digits: 5 }).unwrap();
        r.frame(jpeg(1, 10));
        r.frame(jpeg(2, 100_000));
        r.frame(jpeg(3, 10));
        let s = r.finish();
        assert_eq!((s.frames, s.skipped), (2, 1));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn a_full_disk_is_said_once_and_stops_the_recording() {
        let mut r = Recorder::start(Path::new("/dev/full"), Framing::Raw).unwrap();
        r.frame(jpeg(1, 10));
        r.frame(jpeg(2, 10));
        let s = r.finish();
        assert_eq!(s.frames, 0);
        assert_eq!(s.skipped, 2);
        let e = s.error.unwrap();
        assert!(matches!(e, RecordError::DiskFull { .. }), "{e:?}");
        assert!(e.to_string().contains("the disk is full"), "{e}");
    }

    #[test]
    fn a_path_that_cannot_be_written_is_said_at_once() {
        let e = Recorder::start(Path::new("/nonexistent/dir/x.mjpeg"), Framing::Raw)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("cannot record to /nonexistent/dir/x.mjpeg"),
            "{e}"
        );
    }
}
