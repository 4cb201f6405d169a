//! Motion-JPEG files as a frame source: the lab's length-prefixed framing and
//! raw concatenated JPEGs, indexed lazily so that a 2 GB file neither sits
//! in memory nor delays the first frame.
//!
//! The framing is sniffed from the first bytes because students name files
//! freely (`movie.Mjpeg`, `hd.mjpg`, `out.jpg`). Corrupt frames are skipped
//! with one warning each, because one bad frame in a long clip should cost
//! one frame of video, not the stream.

use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::media::jpeg;

/// How frames are delimited in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each JPEG is preceded by its length as zero-padded ASCII decimal
    /// (`digits` is 5 in the lab's movie.Mjpeg).
    Lab { digits: usize },
    /// JPEGs back to back, split on their SOI/EOI markers (`ffmpeg -f mjpeg`).
    Raw,
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Framing::Lab { digits } => write!(f, "lab framing ({digits}-digit lengths)"),
            Framing::Raw => f.write_str("raw concatenated JPEG"),
        }
    }
}

/// Errors from reading or writing MJPEG files; each names the file and says
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} contains no JPEG frame: is it an MJPEG file?", path.display())]
    NoFrames { path: PathBuf },
    #[error(
        "{} is not an MJPEG file: it should start with ASCII length digits and FF D8 \
         (lab framing) or with FF D8 (raw concatenated JPEG)",
        path.display()
    )]
    UnknownFraming { path: PathBuf },
    #[error(
        "frame {index} of {} (byte {offset}) is past the end of the file: \
         was the file truncated while it was being served?",
        path.display()
    )]
    FrameOutOfRange {
        path: PathBuf,
        index: usize,
        offset: u64,
    },
    #[error(
        "frame {index} of {} (byte {offset}) no longer holds a whole JPEG: \
         the file changed after it was opened; open it again",
        path.display()
    )]
    FileChanged {
        path: PathBuf,
        index: usize,
        offset: u64,
    },
    #[error("lab framing needs 1 to {MAX_DIGITS} length digits, not {digits}")]
    BadDigits { digits: usize },
    #[error("cannot make a {width}x{height} clip: width and height must be 1 to 65535")]
    BadClipSize { width: u32, height: u32 },
    #[error(
        "frame {index} is {len} bytes, which does not fit in {digits} length digits: \
         use more digits, raw framing or a lower quality"
    )]
    FrameDoesNotFit {
        index: u32,
        len: usize,
        digits: usize,
    },
    #[error("cannot encode frame {index} as JPEG: {source}")]
    Encode {
        index: u32,
        source: image::ImageError,
    },
    #[error("cannot write the clip: {source}")]
    Write { source: io::Error },
}

/// A frame slot that was not served, as found while indexing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedFrame {
    /// Position among all frame slots of the file, good or bad, from 0.
    pub file_index: usize,
    /// Byte offset of the slot (its length digits in lab framing).
    pub offset: u64,
    pub reason: String,
}

/// Frames bigger than this are treated as corruption: a wrong length or a
/// missing EOI would otherwise make one "frame" swallow the rest of the file.
pub const MAX_FRAME_LEN: u64 = 64 * 1024 * 1024;
/// Most length digits accepted in lab framing (10 digits already exceed
/// [`MAX_FRAME_LEN`] by far).
pub const MAX_DIGITS: usize = 10;
/// Read size while scanning; big enough that raw scanning is not syscall
/// bound, small enough to stay in cache.
const CHUNK: usize = 64 * 1024;

/// An MJPEG clip on disk or in memory, shared by many sessions via `Arc`.
///
/// Frames are found on demand: asking for frame `n` indexes the file as far
/// as frame `n`, and later reads go straight to the recorded offset.
pub struct MjpegFile {
    path: PathBuf,
    name: String,
    framing: Framing,
    source: Source,
    dimensions: Option<(u16, u16)>,
    index: Mutex<Index>,
    /// How far indexing has read, readable without the index lock so that
    /// a progress bar never waits for the scan it shows.
    scanned: AtomicU64,
}

impl fmt::Debug for MjpegFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MjpegFile")
            .field("path", &self.path)
            .field("framing", &self.framing)
            .field("len", &self.source.len())
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl MjpegFile {
    /// Opens `path`, detects its framing and indexes it up to its first good
    /// frame, so that a file that is not MJPEG fails here and not at PLAY.
    pub fn open(path: &Path) -> Result<MjpegFile, MediaError> {
        let io_err = |source| MediaError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if meta.is_dir() {
            return Err(io_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is a directory, not a file",
            )));
        }
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        Self::with_source(path.to_path_buf(), name, Source::file(file, meta.len()))
    }

    /// Wraps a clip already in memory (the bundled sample); `name` stands in
    /// for the path in logs and errors.
    pub fn from_bytes(name: &str, bytes: Arc<[u8]>) -> Result<MjpegFile, MediaError> {
        Self::with_source(PathBuf::from(name), name.to_owned(), Source::Memory(bytes))
    }

    fn with_source(path: PathBuf, name: String, source: Source) -> Result<MjpegFile, MediaError> {
        let mut head = [0u8; MAX_DIGITS + 2];
        let got = source
            .read_at(0, &mut head)
            .map_err(|source| MediaError::Io {
                path: path.clone(),
                source,
            })?;
        let framing = match detect_framing(&head[..got]) {
            Some(framing) => framing,
            None if got == 0 => return Err(MediaError::NoFrames { path }),
            None => return Err(MediaError::UnknownFraming { path }),
        };
        let mut file = MjpegFile {
            path,
            name,
            framing,
            source,
            dimensions: None,
            index: Mutex::new(Index::default()),
            scanned: AtomicU64::new(0),
        };
        let Some(first) = file.frame(0)? else {
            return Err(MediaError::NoFrames { path: file.path });
        };
        // A first frame with unreadable headers still plays in lenient
        // viewers, so it only costs the dimensions, not the file.
        file.dimensions = jpeg::inspect(&first)
            .ok()
            .map(|info| (info.width, info.height));
        Ok(file)
    }

    /// The file name (without directories), for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Frame `n` (0-based, counting only good frames), Ok(None) past the end.
    pub fn frame(&self, n: usize) -> Result<Option<Vec<u8>>, MediaError> {
        let span = {
            let mut index = self.lock();
            while index.frames.len() <= n && !index.done {
                self.step(&mut index)?;
            }
            index.frames.get(n).copied()
        };
        let Some(span) = span else {
            return Ok(None);
        };
        // The read happens outside the lock so that sessions streaming
        // already indexed frames never wait for each other.
        let mut buf = vec![0u8; span.len as usize];
        let got = self
            .source
            .read_at(span.offset, &mut buf)
            .map_err(|e| self.io_error(e))?;
        if got < buf.len() {
            return Err(MediaError::FrameOutOfRange {
                path: self.path.clone(),
                index: n,
                offset: span.offset,
            });
        }
        if !jpeg::is_complete(&buf) {
            return Err(MediaError::FileChanged {
                path: self.path.clone(),
                index: n,
                offset: span.offset,
            });
        }
        Ok(Some(buf))
    }

    /// Number of good frames if the whole file has been indexed, else None.
    pub fn frame_count(&self) -> Option<usize> {
        let index = self.lock();
        index.done.then_some(index.frames.len())
    }

    /// Index the whole file now and return the number of good frames.
    pub fn index_all(&self) -> Result<usize, MediaError> {
        let mut index = self.lock();
        while !index.done {
            self.step(&mut index)?;
        }
        Ok(index.frames.len())
    }

    /// Index at most `slots` more frame slots and say whether the whole
    /// file is indexed. Unlike [`MjpegFile::index_all`] it lets go of the
    /// index between calls, so sessions reading frames already found do not
    /// wait for a long scan.
    pub fn index_more(&self, slots: usize) -> Result<bool, MediaError> {
        let mut index = self.lock();
        for _ in 0..slots {
            if index.done {
                break;
            }
            self.step(&mut index)?;
        }
        Ok(index.done)
    }

    /// Bytes of the file indexing has read through so far (the whole
    /// length once it is done).
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned.load(Ordering::Relaxed)
    }

    /// The file's length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.source.len()
    }

    /// Corrupt or truncated frame slots found so far.
    pub fn skipped(&self) -> Vec<SkippedFrame> {
        self.lock().skipped.clone()
    }

    /// Width and height of the first frame (from its SOF marker).
    pub fn dimensions(&self) -> Option<(u16, u16)> {
        self.dimensions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // Index only changes in `Index::record`, after all fallible reads, so
        // a panic elsewhere while locked cannot leave it half updated.
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn io_error(&self, source: io::Error) -> MediaError {
        MediaError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Indexes one more frame slot (good or skipped).
    fn step(&self, index: &mut Index) -> Result<(), MediaError> {
        let start = index.next_offset;
        if start >= self.source.len() {
            index.done = true;
            self.scanned.store(self.source.len(), Ordering::Relaxed);
            return Ok(());
        }
        let slot = match self.framing {
            Framing::Lab { digits } => lab_slot(&self.source, &mut index.window, start, digits),
            Framing::Raw => raw_slot(&self.source, &mut index.window, start),
        }
        .map_err(|e| self.io_error(e))?;
        index.record(&self.name, start, slot);
        let scanned = if index.done {
            self.source.len()
        } else {
            index.next_offset
        };
        self.scanned.store(scanned, Ordering::Relaxed);
        Ok(())
    }
}

/// Recognises the framing from the first bytes, or None.
fn detect_framing(head: &[u8]) -> Option<Framing> {
    if head.starts_with(&jpeg::SOI) {
        return Some(Framing::Raw);
    }
    let digits = head.iter().take_while(|b| b.is_ascii_digit()).count();
    let after = head.get(digits..digits + 2)?;
    ((1..=MAX_DIGITS).contains(&digits) && after == jpeg::SOI).then_some(Framing::Lab { digits })
}

/// Where a good frame's JPEG bytes are.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    len: u64,
}

/// What one indexing step found at a slot.
struct Slot {
    outcome: Result<Span, String>,
    /// Where the next slot starts; None when nothing usable follows.
    next: Option<u64>,
}

#[derive(Default)]
struct Index {
    frames: Vec<Span>,
    skipped: Vec<SkippedFrame>,
    next_offset: u64,
    next_file_index: usize,
    done: bool,
    window: Window,
}

impl Index {
    fn record(&mut self, name: &str, start: u64, slot: Slot) {
        let file_index = self.next_file_index;
        match slot.outcome {
            Ok(span) => self.frames.push(span),
            Err(reason) => {
                tracing::warn!(
                    file = name,
                    file_index,
                    offset = start,
                    "skipping frame {file_index} at byte {start}: {reason}"
                );
                self.skipped.push(SkippedFrame {
                    file_index,
                    offset: start,
                    reason,
                });
            }
        }
        self.next_file_index += 1;
        match slot.next {
            Some(next) => self.next_offset = next,
            None => self.done = true,
        }
    }
}

/// Lab framing: hop from length to length with tiny reads; on any damage,
/// resynchronise on the next `<digits>FFD8`.
fn lab_slot(src: &Source, window: &mut Window, start: u64, digits: usize) -> io::Result<Slot> {
    let bad = |reason: String, window: &mut Window| -> io::Result<Slot> {
        let next = find_lab_header(src, window, start + 1, digits)?;
        Ok(Slot {
            outcome: Err(reason),
            next,
        })
    };
    let mut head = [0u8; MAX_DIGITS + 2];
    let head = &mut head[..digits + 2];
    let got = src.read_at(start, head)?;
    if got < head.len() {
        return Ok(Slot {
            outcome: Err(format!(
                "the file ends {got} bytes into the frame header (truncated)"
            )),
            next: None,
        });
    }
    let (len_digits, soi) = head.split_at(digits);
    if !len_digits.iter().all(u8::is_ascii_digit) {
        let shown = String::from_utf8_lossy(len_digits)
            .escape_debug()
            .to_string();
        return bad(
            format!("length \"{shown}\" is not {digits} ASCII digits"),
            window,
        );
    }
    if soi != jpeg::SOI {
        return bad("the JPEG does not start with FF D8".into(), window);
    }
    let len = len_digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    if len < 4 {
        return bad(format!("length {len} is too short for a JPEG"), window);
    }
    if len > MAX_FRAME_LEN {
        return bad(
            format!("length {len} is over the {MAX_FRAME_LEN}-byte limit"),
            window,
        );
    }
    let offset = start + digits as u64;
    let end = offset + len;
    if end > src.len() {
        return bad(
            format!(
                "the file ends {} bytes before the end of this {len}-byte frame (truncated)",
                end - src.len()
            ),
            window,
        );
    }
    let mut tail = [0u8; 2];
    if src.read_at(end - 2, &mut tail)? < 2 {
        return bad("the file ends inside the frame (truncated)".into(), window);
    }
    if tail != jpeg::EOI {
        return bad(
            format!("the {len}-byte JPEG does not end with FF D9"),
            window,
        );
    }
    Ok(Slot {
        outcome: Ok(Span { offset, len }),
        next: Some(end),
    })
}

/// The next position at or after `from` that looks like a lab frame header.
fn find_lab_header(
    src: &Source,
    window: &mut Window,
    mut from: u64,
    digits: usize,
) -> io::Result<Option<u64>> {
    let digits_len = digits as u64;
    while let Some(soi) = find_soi(src, window, from)? {
        if let Some(header) = soi.checked_sub(digits_len).filter(|&h| h >= from) {
            let mut all_digits = true;
            for p in header..soi {
                all_digits &= window.byte(src, p)?.is_some_and(|b| b.is_ascii_digit());
            }
            if all_digits {
                return Ok(Some(header));
            }
        }
        from = soi + 1;
    }
    Ok(None)
}

/// The next SOI (FF D8) at or after `from`.
fn find_soi(src: &Source, window: &mut Window, mut from: u64) -> io::Result<Option<u64>> {
    while let Some(ff) = window.find(src, from, 0xFF)? {
        if window.byte(src, ff + 1)? == Some(0xD8) {
            return Ok(Some(ff));
        }
        from = ff + 1;
    }
    Ok(None)
}

/// Raw framing: one JPEG from SOI to EOI, following marker segment lengths
/// so that JPEGs nested in APP segments (EXIF thumbnails) stay inside.
fn raw_slot(src: &Source, window: &mut Window, start: u64) -> io::Result<Slot> {
    if !(window.byte(src, start)? == Some(0xFF) && window.byte(src, start + 1)? == Some(0xD8)) {
        let next = find_soi(src, window, start + 1)?;
        let garbage = next.unwrap_or(src.len()) - start;
        return Ok(Slot {
            outcome: Err(format!(
                "{garbage} bytes that are not a JPEG (no FF D8 start of image)"
            )),
            next,
        });
    }
    let corrupt = |reason: String, window: &mut Window| -> io::Result<Slot> {
        Ok(Slot {
            outcome: Err(reason),
            next: find_soi(src, window, start + 2)?,
        })
    };
    let truncated = || Slot {
        outcome: Err("the file ends before the end of image FF D9 (truncated)".into()),
        next: None,
    };
    let too_big = || format!("no end of image FF D9 within {MAX_FRAME_LEN} bytes");
    let mut p = start + 2;
    loop {
        if p - start > MAX_FRAME_LEN {
            return corrupt(too_big(), window);
        }
        match window.byte(src, p)? {
            None => return Ok(truncated()),
            Some(0xFF) => {}
            Some(other) => {
                return corrupt(
                    format!(
                        "expected a marker at byte {} of the JPEG, found {other:#04x}",
                        p - start
                    ),
                    window,
                );
            }
        }
        // Fill bytes: any run of FF before the marker code.
        let mut code = window.byte(src, p + 1)?;
        while code == Some(0xFF) {
            p += 1;
            if p - start > MAX_FRAME_LEN {
                return corrupt(too_big(), window);
            }
            code = window.byte(src, p + 1)?;
        }
        let Some(code) = code else {
            return Ok(truncated());
        };
        match code {
            0xD9 => {
                let len = p + 2 - start;
                return Ok(Slot {
                    outcome: Ok(Span { offset: start, len }),
                    next: Some(p + 2),
                });
            }
            0xD8 => {
                return Ok(Slot {
                    outcome: Err(
                        "no end of image FF D9 before the next start of image FF D8".into()
                    ),
                    next: Some(p),
                });
            }
            0x01 | 0xD0..=0xD7 => {
                p += 2;
                continue;
            }
            0x00 => {
                return corrupt(
                    format!("stray FF 00 at byte {} of the JPEG", p - start),
                    window,
                );
            }
            _ => {}
        }
        let (Some(hi), Some(lo)) = (window.byte(src, p + 2)?, window.byte(src, p + 3)?) else {
            return Ok(truncated());
        };
        let seg_len = u16::from_be_bytes([hi, lo]);
        if seg_len < 2 {
            return corrupt(
                format!(
                    "segment FF {code:02X} at byte {} has length {seg_len}",
                    p - start
                ),
                window,
            );
        }
        p += 2 + u64::from(seg_len);
        if code == 0xDA {
            match scan_entropy(src, window, start, p)? {
                Entropy::Marker(at) => p = at,
                Entropy::End => return Ok(truncated()),
                Entropy::TooBig => return corrupt(too_big(), window),
            }
        }
    }
}

enum Entropy {
    /// A marker that ends the entropy-coded data starts here.
    Marker(u64),
    End,
    TooBig,
}

/// Skips entropy-coded data, where FF 00 (stuffing) and RSTn do not end the
/// scan; returns where the next real marker is.
fn scan_entropy(src: &Source, window: &mut Window, start: u64, mut p: u64) -> io::Result<Entropy> {
    loop {
        let Some(ff) = window.find(src, p, 0xFF)? else {
            return Ok(Entropy::End);
        };
        if ff - start > MAX_FRAME_LEN {
            return Ok(Entropy::TooBig);
        }
        match window.byte(src, ff + 1)? {
            None => return Ok(Entropy::End),
            Some(0x00 | 0xD0..=0xD7) => p = ff + 2,
            // The second FF may itself start the marker.
            Some(0xFF) => p = ff + 1,
            Some(_) => return Ok(Entropy::Marker(ff)),
        }
    }
}

/// Where the bytes come from. Files are read positionally so that many
/// sessions can read frames at once without sharing a cursor.
enum Source {
    #[cfg(unix)]
    File {
        file: File,
        len: u64,
    },
    #[cfg(not(unix))]
    File {
        file: Mutex<File>,
        len: u64,
    },
    Memory(Arc<[u8]>),
}

impl Source {
    fn file(file: File, len: u64) -> Source {
        #[cfg(unix)]
        return Source::File { file, len };
        #[cfg(not(unix))]
        return Source::File {
            file: Mutex::new(file),
            len,
        };
    }

    /// Length as seen when the file was opened; bytes appended later are
    /// not served.
    fn len(&self) -> u64 {
        match self {
            Source::File { len, .. } => *len,
            Source::Memory(bytes) => bytes.len() as u64,
        }
    }

    /// Fills `buf` from `offset` as far as the source goes; returns how many
    /// bytes were read (fewer than `buf.len()` only at the end).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Memory(bytes) => {
                let Some(rest) = usize::try_from(offset)
                    .ok()
                    .and_then(|start| bytes.get(start..))
                else {
                    return Ok(0);
                };
                let n = rest.len().min(buf.len());
                buf[..n].copy_from_slice(&rest[..n]);
                Ok(n)
            }
            #[cfg(unix)]
            Source::File { file, .. } => {
                use std::os::unix::fs::FileExt;
                let mut done = 0;
                while done < buf.len() {
                    match file.read_at(&mut buf[done..], offset + done as u64) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
            #[cfg(not(unix))]
            Source::File { file, .. } => {
                use std::io::{Read, Seek, SeekFrom};
                let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
                file.seek(SeekFrom::Start(offset))?;
                let mut done = 0;
                while done < buf.len() {
                    match file.read(&mut buf[done..]) {
                        Ok(0) => break,
                        Ok(n) => done += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(done)
            }
        }
    }
}

/// A chunk of the source kept while scanning, so that byte-by-byte marker
/// walking costs one read per [`CHUNK`].
#[derive(Default)]
struct Window {
    start: u64,
    buf: Vec<u8>,
}

impl Window {
    /// The bytes from `pos` to the end of the window, refilled at `pos` when
    /// `pos` is outside it; empty only at the end of the source.
    fn at(&mut self, src: &Source, pos: u64) -> io::Result<&[u8]> {
        let end = self.start + self.buf.len() as u64;
        if pos < self.start || pos >= end {
            self.buf.resize(CHUNK, 0);
            let n = src.read_at(pos, &mut self.buf)?;
            self.buf.truncate(n);
            self.start = pos;
        }
        // In range by the check above (or 0 after a refill).
        let skip = usize::try_from(pos - self.start).unwrap_or(usize::MAX);
        Ok(self.buf.get(skip..).unwrap_or_default())
    }

    fn byte(&mut self, src: &Source, pos: u64) -> io::Result<Option<u8>> {
        Ok(self.at(src, pos)?.first().copied())
    }

    /// The first position at or after `from` holding `needle`.
    fn find(&mut self, src: &Source, mut from: u64, needle: u8) -> io::Result<Option<u64>> {
        loop {
            let chunk = self.at(src, from)?;
            if chunk.is_empty() {
                return Ok(None);
            }
            if let Some(i) = chunk.iter().position(|&b| b == needle) {
                return Ok(Some(from + i as u64));
            }
            from += chunk.len() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structurally valid JPEG: SOI, one segment, SOS, data with stuffing
    /// and a restart marker, EOI.
    fn jpeg(fill: u8) -> Vec<u8> {
        let mut j = vec![0xFF, 0xD8, 0xFF, 0xDB, 0x00, 0x04, fill, fill];
        j.extend([0xFF, 0xDA, 0x00, 0x03, 0x00]);
        j.extend([fill, 0xFF, 0x00, fill, 0xFF, 0xD3, fill, 0xFF, 0xD9]);
        j
    }

    fn lab(frames: &[Vec<u8>], digits: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for f in frames {
            out.extend(format!("{:0digits$}", f.len()).as_bytes());
            out.extend(f);
        }
        out
    }

    fn mem(bytes: Vec<u8>) -> Result<MjpegFile, MediaError> {
        MjpegFile::from_bytes("test.mjpeg", bytes.into())
    }

    fn all_frames(f: &MjpegFile) -> Vec<Vec<u8>> {
        (0..).map_while(|n| f.frame(n).unwrap()).collect()
    }

    #[test]
    fn detects_framing_from_first_bytes() {
        assert_eq!(
            detect_framing(b"00012\xFF\xD8"),
            Some(Framing::Lab { digits: 5 })
        );
        assert_eq!(
            detect_framing(b"1\xFF\xD8"),
            Some(Framing::Lab { digits: 1 })
        );
        assert_eq!(
            detect_framing(b"0000000012\xFF\xD8"),
            Some(Framing::Lab { digits: 10 })
        );
        assert_eq!(detect_framing(b"00000000012\xFF\xD8"), None);
        assert_eq!(detect_framing(b"\xFF\xD8\xFF"), Some(Framing::Raw));
        assert_eq!(detect_framing(b"hello"), None);
        assert_eq!(detect_framing(b"\xFF\xD8"), Some(Framing::Raw));
        assert_eq!(detect_framing(b""), None);
    }

    #[test]
    fn lab_and_raw_give_the_same_frames() {
        let frames: Vec<_> = (1..=3).map(jpeg).collect();
        let l = mem(lab(&frames, 5)).unwrap();
        assert_eq!(l.framing(), Framing::Lab { digits: 5 });
        assert_eq!(l.frame_count(), None);
        assert_eq!(l.index_all().unwrap(), 3);
        assert_eq!(all_frames(&l), frames);
        let r = mem(frames.concat()).unwrap();
        assert_eq!(r.framing(), Framing::Raw);
        assert_eq!(all_frames(&r), frames);
        assert_eq!(r.frame_count(), Some(3));
        assert!(r.skipped().is_empty());
    }

    #[test]
    fn indexes_only_as_far_as_asked() {
        let frames: Vec<_> = (1..=4).map(jpeg).collect();
        let f = mem(frames.concat()).unwrap();
        assert_eq!(f.lock().frames.len(), 1);
        f.frame(1).unwrap();
        assert_eq!(f.lock().frames.len(), 2);
        assert_eq!(f.frame(usize::MAX).unwrap(), None);
        assert_eq!(f.frame_count(), Some(4));
    }

    #[test]
    fn index_more_reports_how_far_it_read() {
        let frames: Vec<_> = (1..=4).map(jpeg).collect();
        let bytes = frames.concat();
        let total = bytes.len() as u64;
        let f = mem(bytes).unwrap();
        assert_eq!(f.len_bytes(), total);
        // Opening found the first frame only.
        assert_eq!(f.scanned_bytes(), frames[0].len() as u64);
        assert!(!f.index_more(2).unwrap());
        assert_eq!(
            f.scanned_bytes(),
            (frames[0].len() + frames[1].len() + frames[2].len()) as u64
        );
        assert!(f.index_more(5).unwrap());
        assert_eq!(f.scanned_bytes(), total);
        assert_eq!(f.frame_count(), Some(4));
    }

    #[test]
    fn lab_resyncs_after_bad_digits_and_bad_soi() {
        let frames: Vec<_> = (1..=4).map(jpeg).collect();
        let mut bytes = lab(&frames, 6);
        let second = 6 + frames[0].len();
        bytes[second + 2] = b'x';
        let fourth = second + 2 * (6 + frames[1].len());
        bytes[fourth + 6] = 0;
        let f = mem(bytes).unwrap();
        assert_eq!(all_frames(&f), vec![frames[0].clone(), frames[2].clone()]);
        let skipped = f.skipped();
        assert_eq!(skipped.len(), 2);
        assert_eq!(
            (skipped[0].file_index, skipped[0].offset),
            (1, second as u64)
        );
        assert_eq!(
            (skipped[1].file_index, skipped[1].offset),
            (3, fourth as u64)
        );
    }

    #[test]
    fn lab_rejects_oversized_and_truncated_frames() {
        let frames: Vec<_> = (1..=2).map(jpeg).collect();
        let mut bytes = lab(&frames, 9);
        bytes[..9].copy_from_slice(b"999999999");
        bytes.truncate(bytes.len() - 1);
        let f = mem(bytes);
        assert!(matches!(f, Err(MediaError::NoFrames { .. })), "{f:?}");
    }

    #[test]
    fn raw_skips_garbage_and_frames_without_eoi() {
        let a = jpeg(1);
        let b = jpeg(2);
        let mut bytes = a.clone();
        bytes.extend(b"garbage");
        bytes.extend(&b[..b.len() - 2]);
        bytes.extend(&b);
        bytes.extend(&a[..10]);
        let f = mem(bytes).unwrap();
        assert_eq!(f.index_all().unwrap(), 2);
        assert_eq!(all_frames(&f), vec![a.clone(), b.clone()]);
        let idx: Vec<_> = f.skipped().iter().map(|s| s.file_index).collect();
        assert_eq!(idx, vec![1, 2, 4]);
    }

    #[test]
    fn raw_keeps_nested_jpeg_inside_app1() {
        let inner = jpeg(7);
        let mut outer = vec![0xFF, 0xD8, 0xFF, 0xE1];
        outer.extend(((inner.len() + 2) as u16).to_be_bytes());
        outer.extend(&inner);
        outer.extend(&jpeg(8)[2..]);
        let f = mem([outer.clone(), jpeg(9)].concat()).unwrap();
        assert_eq!(all_frames(&f), vec![outer, jpeg(9)]);
    }

    #[test]
    fn errors_name_the_file() {
        let e = mem(Vec::new()).unwrap_err();
        assert!(matches!(e, MediaError::NoFrames { .. }));
        assert!(e.to_string().contains("test.mjpeg contains no JPEG frame"));
        let e = mem(b"just some text\n".to_vec()).unwrap_err();
        assert!(matches!(e, MediaError::UnknownFraming { .. }));
        assert!(e.to_string().starts_with("test.mjpeg is not an MJPEG file"));
        let e = MjpegFile::open(Path::new("/nonexistent/x.Mjpeg")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.Mjpeg"), "{e}");
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<MjpegFile>();
        check::<MediaError>();
    }

    #[test]
    fn window_refills_across_chunks() {
        let bytes: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();
        let src = Source::Memory(bytes.clone().into());
        let mut w = Window::default();
        for pos in [0, CHUNK - 1, CHUNK, 2 * CHUNK + 5, 1, 3 * CHUNK - 1] {
            assert_eq!(w.byte(&src, pos as u64).unwrap(), Some(bytes[pos]));
        }
        assert_eq!(w.byte(&src, 3 * CHUNK as u64).unwrap(), None);
        assert_eq!(w.find(&src, 1, 0).unwrap(), Some(251));
    }
}
