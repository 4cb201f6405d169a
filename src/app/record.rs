//! The Record toggle: where to record is asked in a file dialog on a
//! worker thread (it blocks its caller), every frame that arrives goes to
//! a [`Recorder`] as it came off the wire, and stopping finishes the file
//! on another worker, so that neither the dialog nor the disk ever holds
//! up the window.

use std::path::PathBuf;

use crossbeam_channel::{Receiver, Sender};

use crate::media::Framing;
use crate::net::record::{RecordSummary, Recorder};

/// Frames up to this size fit the lab's 5-digit lengths with room to
/// spare; a stream of bigger ones is recorded with 6 digits (HD).
const LAB_SIZED: usize = 50_000;

/// What the user should be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordNews {
    Started(String),
    Notice(String),
    Failed(String),
}

enum Answer {
    Picked(Option<PathBuf>),
    Finished(RecordSummary),
}

enum Stage {
    Off,
    Asking { framing: Framing },
    On { recorder: Recorder },
}

/// The window's recording, if any.
pub struct Recording {
    stage: Stage,
    frames: u64,
    /// The error that stopped the recording was said already.
    failure_said: bool,
    tx: Sender<Answer>,
    rx: Receiver<Answer>,
}

impl Default for Recording {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        Recording {
            stage: Stage::Off,
            frames: 0,
            failure_said: false,
            tx,
            rx,
        }
    }
}

impl Recording {
    /// Recording (or asking where to).
    pub fn is_on(&self) -> bool {
        !matches!(self.stage, Stage::Off)
    }

    /// Frames handed to the recorder so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Start (asking where, suggesting `name`; the framing from the size
    /// of the frame on screen) or stop.
    pub fn toggle(&mut self, ctx: &egui::Context, name: String, frame_bytes: usize) {
        match std::mem::replace(&mut self.stage, Stage::Off) {
            Stage::Off => {
                let framing = if frame_bytes <= LAB_SIZED {
                    Framing::Lab { digits: 5 }
                } else {
                    Framing::Lab { digits: 6 }
                };
                self.stage = Stage::Asking { framing };
                let (tx, ctx) = (self.tx.clone(), ctx.clone());
                let spawned = std::thread::Builder::new()
                    .name("streamlab-record-dialog".into())
                    .spawn(move || {
                        let picked = rfd::FileDialog::new()
                            .set_title("Record the stream to")
                            .set_file_name(&name)
                            .add_filter("Motion-JPEG, the lab's framing", &["Mjpeg", "mjpeg"])
                            .save_file();
                        let _ = tx.send(Answer::Picked(picked));
                        ctx.request_repaint();
                    });
                if spawned.is_err() {
                    self.stage = Stage::Off;
                }
            }
            Stage::Asking { .. } => {}
            Stage::On { recorder } => {
                let (tx, ctx) = (self.tx.clone(), ctx.clone());
                // Finishing writes what is queued and syncs the file.
                let _ = std::thread::Builder::new()
                    .name("streamlab-record-finish".into())
                    .spawn(move || {
                        let _ = tx.send(Answer::Finished(recorder.finish()));
                        ctx.request_repaint();
                    });
            }
        }
    }

    /// Start recording to `path` at once (no dialog): tests, and paths
    /// given some other way.
    pub fn start_at(&mut self, path: PathBuf, framing: Framing) -> RecordNews {
        match Recorder::start(&path, framing) {
            Ok(recorder) => {
                self.frames = 0;
                self.failure_said = false;
                let said = format!("Recording to {} ({framing}).", path.display());
                self.stage = Stage::On { recorder };
                RecordNews::Started(said)
            }
            Err(e) => {
                self.stage = Stage::Off;
                RecordNews::Failed(e.to_string())
            }
        }
    }

    /// A frame that arrived, as received.
    pub fn frame(&mut self, jpeg: std::sync::Arc<Vec<u8>>) {
        if let Stage::On { recorder, .. } = &mut self.stage {
            recorder.frame(jpeg);
            self.frames += 1;
        }
    }

    /// What happened since the last call: the dialog answered, the
    /// recording failed, or finished.
    pub fn poll(&mut self) -> Option<RecordNews> {
        if let Stage::On { recorder, .. } = &self.stage
            && let Some(e) = recorder.error()
        {
            self.failure_said = true;
            return Some(RecordNews::Failed(e.to_string()));
        }
        match self.rx.try_recv().ok()? {
            Answer::Picked(None) => {
                self.stage = Stage::Off;
                Some(RecordNews::Notice(
                    "Not recording: no file was chosen (or no file dialog could be shown).".into(),
                ))
            }
            Answer::Picked(Some(path)) => {
                let framing = match self.stage {
                    Stage::Asking { framing } => framing,
                    _ => return None,
                };
                Some(self.start_at(path, framing))
            }
            Answer::Finished(s) => Some(finished(&s, self.failure_said)),
        }
    }
}

fn finished(s: &RecordSummary, failure_said: bool) -> RecordNews {
    let mut said = format!(
        "Recorded {} frames ({} KB) to {}; `streamlab serve` plays it back.",
        s.frames,
        s.bytes / 1024,
        s.path.display()
    );
    if s.skipped > 0 {
        said.push_str(&format!(" {} frames could not be written.", s.skipped));
    }
    match &s.error {
        Some(e) if !failure_said => RecordNews::Failed(format!("{e}. {said}")),
        _ => RecordNews::Notice(said),
    }
}
