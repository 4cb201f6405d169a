//! Reading a camera through Video4Linux2: open the device, pick MJPEG
//! (or YUYV) at the size asked, map a few buffers and take frames from
//! them. The structs below are the kernel's own layouts from
//! `linux/videodev2.h` (64-bit), checked by size in the tests, since this
//! file speaks to the kernel with raw ioctls rather than through a crate.
//!
//! Every failure becomes a [`CameraError`] in words: no device, not a
//! camera, busy, a format or size it cannot give, unplugged (or silent)
//! while streaming. These machines have no camera; what can be checked
//! here is checked (layouts, request numbers, a path that is not a camera).

use std::ffi::CString;
use std::os::raw::{c_int, c_ulong, c_void};
use std::path::Path;

use super::camera::{CameraError, CameraFrame, Capture, PixelFormat};

const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
const MEMORY_MMAP: u32 = 1;
const CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
const CAP_STREAMING: u32 = 0x0400_0000;
const CAP_DEVICE_CAPS: u32 = 0x8000_0000;
const FIELD_ANY: u32 = 0;
const MJPG: u32 = u32::from_le_bytes(*b"MJPG");
const JPEG: u32 = u32::from_le_bytes(*b"JPEG");
const YUYV: u32 = u32::from_le_bytes(*b"YUYV");
/// Buffers the driver fills while one is being read.
const BUFFERS: u32 = 4;
/// A camera that sends nothing for this long is taken as gone.
const SILENT_MS: c_int = 3000;

#[repr(C)]
struct Capability {
    driver: [u8; 16],
    card: [u8; 32],
    bus_info: [u8; 32],
    version: u32,
    capabilities: u32,
    device_caps: u32,
    reserved: [u32; 3],
}

#[repr(C)]
struct FmtDesc {
    index: u32,
    kind: u32,
    flags: u32,
    description: [u8; 32],
    pixelformat: u32,
    mbus_code: u32,
    reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct PixFormat {
    width: u32,
    height: u32,
    pixelformat: u32,
    field: u32,
    bytesperline: u32,
    sizeimage: u32,
    colorspace: u32,
    private: u32,
    flags: u32,
    ycbcr_enc: u32,
    quantization: u32,
    xfer_func: u32,
}

/// The format union: 200 bytes, 8-aligned (some members hold pointers).
#[repr(C, align(8))]
struct FormatUnion {
    pix: PixFormat,
    rest: [u8; 200 - 48],
}

#[repr(C)]
struct Format {
    kind: u32,
    fmt: FormatUnion,
}

#[repr(C)]
struct RequestBuffers {
    count: u32,
    kind: u32,
    memory: u32,
    capabilities: u32,
    flags: u8,
    reserved: [u8; 3],
}

#[repr(C)]
struct TimeVal {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct TimeCode {
    kind: u32,
    flags: u32,
    frames: u8,
    seconds: u8,
    minutes: u8,
    hours: u8,
    userbits: [u8; 4],
}

#[repr(C)]
struct Buffer {
    index: u32,
    kind: u32,
    bytesused: u32,
    flags: u32,
    field: u32,
    timestamp: TimeVal,
    timecode: TimeCode,
    sequence: u32,
    memory: u32,
    /// The union `m`: for MMAP buffers, the offset to map.
    offset: u64,
    length: u32,
    reserved2: u32,
    request_fd: u32,
}

#[repr(C)]
struct StreamParm {
    kind: u32,
    /// `v4l2_captureparm` first: capability, capturemode, then the time
    /// per frame as a fraction.
    parm: [u32; 50],
}

#[repr(C)]
struct FrmSizeEnum {
    index: u32,
    pixel_format: u32,
    kind: u32,
    /// The union: discrete (width, height) first, or the stepwise six.
    size: [u32; 6],
    reserved: [u32; 2],
}

#[repr(C)]
struct FrmIvalEnum {
    index: u32,
    pixel_format: u32,
    width: u32,
    height: u32,
    kind: u32,
    /// The union: a discrete interval (numerator, denominator) first.
    interval: [u32; 6],
    reserved: [u32; 2],
}

const FRMSIZE_TYPE_DISCRETE: u32 = 1;
const FRMIVAL_TYPE_DISCRETE: u32 = 1;

/// `_IOC(dir, 'V', nr, size)` as the kernel's ioctl.h builds it.
const fn ioc(dir: c_ulong, nr: c_ulong, size: usize) -> c_ulong {
    (dir << 30) | ((size as c_ulong) << 16) | ((b'V' as c_ulong) << 8) | nr
}
const READ: c_ulong = 2;
const WRITE: c_ulong = 1;
const QUERYCAP: c_ulong = ioc(READ, 0, size_of::<Capability>());
const ENUM_FMT: c_ulong = ioc(READ | WRITE, 2, size_of::<FmtDesc>());
const S_FMT: c_ulong = ioc(READ | WRITE, 5, size_of::<Format>());
const REQBUFS: c_ulong = ioc(READ | WRITE, 8, size_of::<RequestBuffers>());
const QUERYBUF: c_ulong = ioc(READ | WRITE, 9, size_of::<Buffer>());
const QBUF: c_ulong = ioc(READ | WRITE, 15, size_of::<Buffer>());
const DQBUF: c_ulong = ioc(READ | WRITE, 17, size_of::<Buffer>());
const STREAMON: c_ulong = ioc(WRITE, 18, size_of::<c_int>());
const STREAMOFF: c_ulong = ioc(WRITE, 19, size_of::<c_int>());
const S_PARM: c_ulong = ioc(READ | WRITE, 22, size_of::<StreamParm>());
const ENUM_FRAMESIZES: c_ulong = ioc(READ | WRITE, 74, size_of::<FrmSizeEnum>());
const ENUM_FRAMEINTERVALS: c_ulong = ioc(READ | WRITE, 75, size_of::<FrmIvalEnum>());

fn zeroed<T>() -> T {
    // SAFETY: only used for the plain-old-data structs above, for which
    // all zero bytes are a valid value (the kernel's own convention).
    unsafe { std::mem::zeroed() }
}

/// One ioctl; Err with errno.
fn ioctl<T>(fd: c_int, request: c_ulong, arg: &mut T) -> Result<(), i32> {
    loop {
        // SAFETY: `arg` is a live, properly laid out struct of the size
        // the request number encodes.
        let r = unsafe { libc::ioctl(fd, request as _, arg as *mut T as *mut c_void) };
        if r != -1 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

fn fourcc(code: u32) -> String {
    code.to_le_bytes()
        .iter()
        .map(|&b| if b.is_ascii_graphic() { b as char } else { '?' })
        .collect()
}

/// A mapped driver buffer.
struct Mapped {
    ptr: *mut c_void,
    len: usize,
}

/// A camera streaming into mapped buffers.
pub struct V4l2Camera {
    fd: c_int,
    path: String,
    buffers: Vec<Mapped>,
    format: PixelFormat,
    width: u16,
    height: u16,
}

// SAFETY: the mapped buffers belong to this camera alone and are read only
// by the thread that owns it.
unsafe impl Send for V4l2Camera {}

impl V4l2Camera {
    /// Open `path` for `width`x`height` at `fps`, MJPEG if the camera
    /// gives it, else YUYV.
    pub fn open(path: &str, width: u16, height: u16, fps: u32) -> Result<V4l2Camera, CameraError> {
        let c_path = CString::new(path).map_err(|_| CameraError::NoDevice(path.to_string()))?;
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe {
            libc::open(
                c_path.as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EBUSY) => CameraError::Busy(path.to_string()),
                Some(libc::EACCES | libc::EPERM) => CameraError::Format {
                    path: path.to_string(),
                    asked: "to be opened by this user".into(),
                    offers: "no access (add yourself to the video group)".into(),
                },
                _ => CameraError::NoDevice(path.to_string()),
            });
        }
        let mut cam = V4l2Camera {
            fd,
            path: path.to_string(),
            buffers: Vec::new(),
            format: PixelFormat::Mjpeg,
            width,
            height,
        };
        cam.set_up(width, height, fps)?;
        Ok(cam)
    }

    fn busy_or(&self, e: i32, otherwise: CameraError) -> CameraError {
        if e == libc::EBUSY {
            CameraError::Busy(self.path.clone())
        } else {
            otherwise
        }
    }

    fn set_up(&mut self, width: u16, height: u16, fps: u32) -> Result<(), CameraError> {
        let path = self.path.clone();
        let mut cap: Capability = zeroed();
        ioctl(self.fd, QUERYCAP, &mut cap).map_err(|_| CameraError::NoDevice(path.clone()))?;
        let caps = if cap.capabilities & CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        if caps & CAP_VIDEO_CAPTURE == 0 || caps & CAP_STREAMING == 0 {
            return Err(CameraError::Format {
                path,
                asked: "video capture by streaming".into(),
                offers: "no capture (it may be a metadata node: try the next /dev/videoN)".into(),
            });
        }
        let mut offered = Vec::new();
        for index in 0..64 {
            let mut d: FmtDesc = zeroed();
            d.index = index;
            d.kind = BUF_TYPE_VIDEO_CAPTURE;
            if ioctl(self.fd, ENUM_FMT, &mut d).is_err() {
                break;
            }
            offered.push(d.pixelformat);
        }
        let (code, format) = if let Some(&c) = offered.iter().find(|&&c| c == MJPG || c == JPEG) {
            (c, PixelFormat::Mjpeg)
        } else if offered.contains(&YUYV) {
            (YUYV, PixelFormat::Yuyv)
        } else {
            return Err(CameraError::Format {
                path,
                asked: "MJPEG or YUYV".into(),
                offers: offered
                    .iter()
                    .map(|&c| fourcc(c))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        let mut f: Format = zeroed();
        f.kind = BUF_TYPE_VIDEO_CAPTURE;
        f.fmt.pix.width = u32::from(width);
        f.fmt.pix.height = u32::from(height);
        f.fmt.pix.pixelformat = code;
        f.fmt.pix.field = FIELD_ANY;
        ioctl(self.fd, S_FMT, &mut f).map_err(|e| {
            self.busy_or(
                e,
                CameraError::Format {
                    path: path.clone(),
                    asked: format!("{width}x{height} {}", fourcc(code)),
                    offers: "another size (see v4l2-ctl --list-formats-ext)".into(),
                },
            )
        })?;
        let (got_w, got_h) = (f.fmt.pix.width, f.fmt.pix.height);
        if (got_w, got_h) != (u32::from(width), u32::from(height)) || f.fmt.pix.pixelformat != code
        {
            return Err(CameraError::Format {
                path,
                asked: format!("{width}x{height} {}", fourcc(code)),
                offers: format!("{got_w}x{got_h} {}", fourcc(f.fmt.pix.pixelformat)),
            });
        }
        self.format = format;
        // The rate is a wish: cameras that cannot set it go at their own.
        let mut p: StreamParm = zeroed();
        p.kind = BUF_TYPE_VIDEO_CAPTURE;
        p.parm[2] = 1;
        p.parm[3] = fps.max(1);
        let _ = ioctl(self.fd, S_PARM, &mut p);
        let mut req: RequestBuffers = zeroed();
        req.count = BUFFERS;
        req.kind = BUF_TYPE_VIDEO_CAPTURE;
        req.memory = MEMORY_MMAP;
        ioctl(self.fd, REQBUFS, &mut req).map_err(|e| {
            self.busy_or(
                e,
                CameraError::Format {
                    path: path.clone(),
                    asked: "memory-mapped buffers".into(),
                    offers: "none".into(),
                },
            )
        })?;
        for index in 0..req.count {
            let mut b: Buffer = zeroed();
            b.index = index;
            b.kind = BUF_TYPE_VIDEO_CAPTURE;
            b.memory = MEMORY_MMAP;
            ioctl(self.fd, QUERYBUF, &mut b).map_err(|_| CameraError::Unplugged(path.clone()))?;
            // SAFETY: mapping the buffer the driver just described, at the
            // offset and length it gave, read-only.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    b.length as usize,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    self.fd,
                    b.offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                return Err(CameraError::Unplugged(path));
            }
            self.buffers.push(Mapped {
                ptr,
                len: b.length as usize,
            });
            ioctl(self.fd, QBUF, &mut b).map_err(|_| CameraError::Unplugged(path.clone()))?;
        }
        let mut kind = BUF_TYPE_VIDEO_CAPTURE as c_int;
        ioctl(self.fd, STREAMON, &mut kind)
            .map_err(|e| self.busy_or(e, CameraError::Unplugged(path.clone())))?;
        Ok(())
    }
}

impl Capture for V4l2Camera {
    fn next_frame(&mut self) -> Result<CameraFrame, CameraError> {
        let gone = || CameraError::Unplugged(self.path.clone());
        let mut pfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let ready = unsafe { libc::poll(&mut pfd, 1, SILENT_MS) };
        if ready <= 0 || pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return Err(gone());
        }
        let mut b: Buffer = zeroed();
        b.kind = BUF_TYPE_VIDEO_CAPTURE;
        b.memory = MEMORY_MMAP;
        ioctl(self.fd, DQBUF, &mut b).map_err(|_| gone())?;
        let Some(m) = self.buffers.get(b.index as usize) else {
            return Err(gone());
        };
        let used = (b.bytesused as usize).min(m.len);
        // SAFETY: the driver handed this mapped buffer back with `used`
        // bytes filled; it is not queued again until they are copied.
        let bytes = unsafe { std::slice::from_raw_parts(m.ptr as *const u8, used) }.to_vec();
        let _ = ioctl(self.fd, QBUF, &mut b);
        Ok(CameraFrame {
            format: self.format,
            width: self.width,
            height: self.height,
            bytes,
        })
    }
}

impl Drop for V4l2Camera {
    fn drop(&mut self) {
        let mut kind = BUF_TYPE_VIDEO_CAPTURE as c_int;
        let _ = ioctl(self.fd, STREAMOFF, &mut kind);
        for m in &self.buffers {
            // SAFETY: unmapping what set_up mapped, once.
            unsafe { libc::munmap(m.ptr, m.len) };
        }
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// The sizes and rates the camera at `path` offers in the format it
/// would be read in (MJPEG, else YUYV), largest first: (width, height,
/// frames per second). Empty when it cannot say (or is no camera).
pub fn list_modes(path: &str) -> Vec<(u16, u16, u32)> {
    let Ok(c_path) = CString::new(path) else {
        return Vec::new();
    };
    // SAFETY: a valid NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Vec::new();
    }
    let mut formats = Vec::new();
    for index in 0..64 {
        let mut d: FmtDesc = zeroed();
        d.index = index;
        d.kind = BUF_TYPE_VIDEO_CAPTURE;
        if ioctl(fd, ENUM_FMT, &mut d).is_err() {
            break;
        }
        formats.push(d.pixelformat);
    }
    let code = [MJPG, JPEG, YUYV].into_iter().find(|c| formats.contains(c));
    let mut modes = Vec::new();
    if let Some(code) = code {
        for index in 0..64 {
            let mut s: FrmSizeEnum = zeroed();
            s.index = index;
            s.pixel_format = code;
            if ioctl(fd, ENUM_FRAMESIZES, &mut s).is_err() || s.kind != FRMSIZE_TYPE_DISCRETE {
                break;
            }
            let (w, h) = (s.size[0], s.size[1]);
            let mut best = 0;
            for i in 0..32 {
                let mut v: FrmIvalEnum = zeroed();
                v.index = i;
                v.pixel_format = code;
                v.width = w;
                v.height = h;
                if ioctl(fd, ENUM_FRAMEINTERVALS, &mut v).is_err()
                    || v.kind != FRMIVAL_TYPE_DISCRETE
                {
                    break;
                }
                let (num, den) = (v.interval[0], v.interval[1]);
                if let Some(rate) = den.checked_div(num) {
                    best = best.max(rate);
                }
            }
            if let (Ok(w), Ok(h)) = (u16::try_from(w), u16::try_from(h))
                && best > 0
            {
                modes.push((w, h, best));
            }
        }
    }
    // SAFETY: our own descriptor, closed once.
    unsafe { libc::close(fd) };
    modes.sort_by_key(|m| std::cmp::Reverse((m.0, m.1)));
    modes.dedup();
    modes
}

/// The V4L2 video devices here: path and the name the driver gives.
pub fn list_cameras() -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir("/sys/class/video4linux")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let node = e.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(e.path().join("name")).ok()?;
            let path = format!("/dev/{node}");
            Path::new(&path)
                .exists()
                .then(|| (path, name.trim().to_string()))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_kernels() {
        // linux/videodev2.h on 64-bit Linux.
        assert_eq!(size_of::<Capability>(), 104);
        assert_eq!(size_of::<FmtDesc>(), 64);
        assert_eq!(size_of::<PixFormat>(), 48);
        assert_eq!(size_of::<Format>(), 208);
        assert_eq!(size_of::<RequestBuffers>(), 20);
        assert_eq!(size_of::<Buffer>(), 88);
        assert_eq!(size_of::<StreamParm>(), 204);
        assert_eq!(size_of::<FrmSizeEnum>(), 44);
        assert_eq!(size_of::<FrmIvalEnum>(), 52);
        assert_eq!(ENUM_FRAMESIZES, 0xc02c_564a);
        assert_eq!(ENUM_FRAMEINTERVALS, 0xc034_564b);
        // The request numbers as the kernel headers give them.
        assert_eq!(QUERYCAP, 0x8068_5600);
        assert_eq!(ENUM_FMT, 0xc040_5602);
        assert_eq!(S_FMT, 0xc0d0_5605);
        assert_eq!(REQBUFS, 0xc014_5608);
        assert_eq!(QUERYBUF, 0xc058_5609);
        assert_eq!(QBUF, 0xc058_560f);
        assert_eq!(DQBUF, 0xc058_5611);
        assert_eq!(STREAMON, 0x4004_5612);
        assert_eq!(STREAMOFF, 0x4004_5613);
        assert_eq!(S_PARM, 0xc0cc_5616);
        assert_eq!(fourcc(MJPG), "MJPG");
    }

    #[test]
    fn what_is_not_a_camera_is_said_in_words() {
        let e = V4l2Camera::open("/dev/streamlab-no-such-camera", 640, 480, 30)
            .err()
            .unwrap();
        assert_eq!(
            e,
            CameraError::NoDevice("/dev/streamlab-no-such-camera".into())
        );
        // A device that is not a video device at all.
        let e = V4l2Camera::open("/dev/null", 640, 480, 30).err().unwrap();
        assert_eq!(e, CameraError::NoDevice("/dev/null".into()));
        assert!(
            list_modes("/dev/null").is_empty(),
            "no modes from what is no camera"
        );
    }
}
