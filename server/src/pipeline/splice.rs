//! Moving a relayed stream's bytes from one socket to the other inside the kernel, with
//! splice(2) through a pipe, instead of copying them into the lab and out again.
//!
//! A [`pump()`](super::pump()) uses it only for what no one in the lab needs to see: once
//! the open data-event window has captured its `--snaplen` bytes, and while no stage is
//! installed. Every other read (the first bytes of each window, every byte when a stage
//! runs) still goes through a buffer of the lab's. The pipe holds at most one window, so
//! back-pressure is the same: the pump splices in, splices all of it out, and only then
//! reads again.
//!
//! Linux only: elsewhere [`Pipe::new`] fails, and the pump keeps copying.

use std::io;

use tokio::net::TcpStream;

#[cfg(target_os = "linux")]
pub use linux::Pipe;
#[cfg(not(target_os = "linux"))]
pub use other::Pipe;

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::OwnedFd;

    use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_setpipe_size, pipe_with, splice};
    use tokio::io::Interest;
    use tokio::net::TcpStream;

    /// A pipe of one pump's own; empty between two windows.
    #[derive(Debug)]
    pub struct Pipe {
        /// Where bytes leave toward the writing socket.
        read: OwnedFd,
        /// Where bytes from the reading socket come in.
        write: OwnedFd,
    }

    /// splice's flags both ways: move pages rather than copy them where the kernel can,
    /// and never wait on the pipe (the sockets are non-blocking already).
    fn flags() -> SpliceFlags {
        SpliceFlags::MOVE | SpliceFlags::NONBLOCK
    }

    impl Pipe {
        /// A pipe with room for `window` bytes: a socket's bytes take a pipe slot per
        /// page or fragment, and a pipe has 16 by default.
        pub fn new(window: usize) -> io::Result<Pipe> {
            let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
            // Too big for /proc/sys/fs/pipe-max-size, say: the default still works, with
            // fewer bytes per splice.
            let _ = fcntl_setpipe_size(&write, window);
            Ok(Pipe { read, write })
        }

        /// Moves up to `max` bytes that `from` has into the pipe, which must be empty.
        /// `Ok(0)`: `from` sent FIN. `WouldBlock`: nothing to read (and `from`'s
        /// readiness is cleared, as `try_read` clears it).
        pub fn fill(&self, from: &TcpStream, max: usize) -> io::Result<usize> {
            from.try_io(Interest::READABLE, || {
                Ok(splice(from, None, &self.write, None, max, flags())?)
            })
        }

        /// Moves up to `len` of the bytes in the pipe to `to`. `WouldBlock`: `to` has no
        /// room (its readiness is cleared).
        pub fn drain(&self, to: &TcpStream, len: usize) -> io::Result<usize> {
            to.try_io(Interest::WRITABLE, || {
                Ok(splice(&self.read, None, to, None, len, flags())?)
            })
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod other {
    use std::io;

    use tokio::net::TcpStream;

    /// No splice(2) here: never made.
    #[derive(Debug)]
    pub struct Pipe(());

    impl Pipe {
        pub fn new(_window: usize) -> io::Result<Pipe> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub fn fill(&self, _from: &TcpStream, _max: usize) -> io::Result<usize> {
            Err(io::ErrorKind::Unsupported.into())
        }
        pub fn drain(&self, _to: &TcpStream, _len: usize) -> io::Result<usize> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

/// Moves all `len` bytes in `pipe` to `to`, waiting for room as long as it takes (the
/// back-pressure). Says how many were moved, all of them or those before an error.
pub async fn drain_all(pipe: &Pipe, to: &TcpStream, len: usize) -> (usize, io::Result<()>) {
    let mut done = 0;
    while done < len {
        if let Err(e) = to.writable().await {
            return (done, Err(e));
        }
        match pipe.drain(to, len - done) {
            // The pipe has bytes, and the lab holds its write end: never, but not a spin.
            Ok(0) => return (done, Err(io::ErrorKind::WriteZero.into())),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}
