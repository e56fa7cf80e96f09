//! The protocols the collector speaks over sockets: the PostgreSQL frontend/backend protocol
//! ([`postgres`]) and the TLS driver shared by every TLS connection ([`tls`]); for the backend
//! push (docs/protocol.md, "Transport", "Authentication", "Push envelope"): the sans-io HTTP/1.1 client codec ([`http`]), HS256 JWTs
//! ([`jwt`]) and gzip framing ([`gzip`]), all pure.
//!
//! Each protocol is a pure state machine fed with bytes plus a small blocking driver. This
//! module holds what the drivers share: [`wait_io`], the one way a driver waits on a socket
//! (docs/protocol.md, "Transport" "waiting": a `poll` on the socket and the signal fd with the operation's
//! remaining deadline), [`connect_fd`], a non-blocking connect waited for the same way,
//! [`Stream`], a connection before or after TLS, and [`IoError`], what such a wait or
//! transfer can end with.

pub mod dns;
pub mod gzip;
pub mod http;
pub mod jwt;
pub mod postgres;
pub mod tls;

use crate::sys::signals::{Signals, Woken};
use rustix::event::{PollFd, PollFlags};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use std::io::{self, Read, Write};
use std::time::Instant;
use tls::TlsStream;

/// How a socket transfer or a wait ended when it did not succeed.
#[derive(Debug)]
pub enum IoError {
    /// The operation's deadline passed.
    Timeout,
    /// SIGTERM or SIGINT arrived while waiting.
    Interrupted,
    /// The peer closed the connection.
    Closed,
    /// A system call failed.
    Io(std::io::Error),
    /// The TLS layer failed (handshake, certificate, alert, bad record).
    Tls(rustls::Error),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::Timeout => f.write_str("timed out"),
            IoError::Interrupted => f.write_str("interrupted by a stop signal"),
            IoError::Closed => f.write_str("connection closed by the peer"),
            IoError::Io(e) => write!(f, "{e}"),
            IoError::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl From<std::io::Error> for IoError {
    fn from(e: std::io::Error) -> Self {
        IoError::Io(e)
    }
}

/// Waits until `fd` is ready for `flags` (or hung up), the deadline passes (`Timeout`), or a
/// stop signal arrives (`Interrupted`). SIGHUP and SIGUSR1 stay queued in `signals` for the
/// loop and the wait goes on.
pub fn wait_io(
    fd: BorrowedFd<'_>,
    flags: PollFlags,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<(), IoError> {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(IoError::Timeout);
        }
        let ns = u64::try_from((deadline - now).as_nanos()).unwrap_or(u64::MAX);
        match signals {
            Some(s) => match crate::sys::signals::wait(s, Some((fd, flags)), ns)? {
                Woken::Ready => return Ok(()),
                Woken::Deadline => {}
                Woken::Signal => {
                    if s.stop_requested() {
                        return Err(IoError::Interrupted);
                    }
                }
            },
            None => {
                let timeout = rustix::time::Timespec {
                    tv_sec: (ns / 1_000_000_000) as i64,
                    tv_nsec: (ns % 1_000_000_000) as i64,
                };
                let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
                match rustix::event::poll(&mut fds, Some(&timeout)) {
                    Ok(0) | Err(rustix::io::Errno::INTR) => {}
                    Ok(_) => return Ok(()),
                    Err(e) => return Err(IoError::Io(e.into())),
                }
            }
        }
    }
}

/// Waits `pause` (never past `deadline`) for nothing but a stop signal (`Interrupted`): lets a
/// reply that is arriving in pieces gather in the socket, to be read in one go instead of one
/// wake-up per piece the peer writes. SIGHUP and SIGUSR1 stay queued as in [`wait_io`].
pub fn pause(
    pause: std::time::Duration,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<(), IoError> {
    let until = deadline.min(Instant::now() + pause);
    loop {
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        let ns = u64::try_from((until - now).as_nanos()).unwrap_or(u64::MAX);
        match signals {
            Some(s) => {
                if crate::sys::signals::wait(s, None, ns)? == Woken::Signal && s.stop_requested() {
                    return Err(IoError::Interrupted);
                }
            }
            None => std::thread::sleep(until - now),
        }
    }
}

/// A non-blocking connect, waited for with [`wait_io`].
pub fn connect_fd(
    family: AddressFamily,
    addr: &impl rustix::net::addr::SocketAddrArg,
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<OwnedFd, IoError> {
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io::Error::from)?;
    match rustix::net::connect(&fd, addr) {
        Ok(()) => return Ok(fd),
        Err(rustix::io::Errno::INPROGRESS | rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
        }
        Err(e) => return Err(IoError::Io(e.into())),
    }
    wait_io(fd.as_fd(), PollFlags::OUT, deadline, signals)?;
    match rustix::net::sockopt::socket_error(&fd).map_err(io::Error::from)? {
        Ok(()) => Ok(fd),
        Err(e) => Err(IoError::Io(e.into())),
    }
}

/// Writes all of `data` to a non-blocking plain socket before `deadline`.
pub fn write_plain<S: Write + AsFd>(
    s: &mut S,
    mut data: &[u8],
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<(), IoError> {
    while !data.is_empty() {
        match s.write(data) {
            Ok(0) => return Err(IoError::Closed),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_io(s.as_fd(), PollFlags::OUT, deadline, signals)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::Io(e)),
        }
    }
    Ok(())
}

/// Reads at least one byte from a non-blocking plain socket before `deadline`.
pub fn read_plain<S: Read + AsFd>(
    s: &mut S,
    buf: &mut [u8],
    deadline: Instant,
    signals: Option<&Signals>,
) -> Result<usize, IoError> {
    loop {
        match s.read(buf) {
            Ok(0) => return Err(IoError::Closed),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait_io(s.as_fd(), PollFlags::IN, deadline, signals)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(IoError::Io(e)),
        }
    }
}

/// A connection before or after TLS: the plain socket, or TLS over it.
pub enum Stream<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
}

impl<S: Read + Write + AsFd> Stream<S> {
    pub fn write_all(
        &mut self,
        data: &[u8],
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<(), IoError> {
        match self {
            Stream::Tls(t) => t.write_all(data, deadline, signals),
            Stream::Plain(s) => write_plain(s, data, deadline, signals),
        }
    }

    pub fn read(
        &mut self,
        buf: &mut [u8],
        deadline: Instant,
        signals: Option<&Signals>,
    ) -> Result<usize, IoError> {
        match self {
            Stream::Tls(t) => t.read(buf, deadline, signals),
            Stream::Plain(s) => read_plain(s, buf, deadline, signals),
        }
    }

    /// Whether an idle connection has something to read (bytes nobody asked for, or the
    /// peer's close): then it must not carry another request. Never waits.
    pub fn idle_input(&mut self) -> bool {
        match self {
            Stream::Tls(t) => t.idle_input(),
            Stream::Plain(s) => {
                let mut byte = [0u8; 1];
                !matches!(s.read(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
            }
        }
    }
}
