//! Signals without handlers: SIGHUP, SIGTERM, SIGINT and SIGUSR1 are blocked at start and read
//! from a `signalfd`, which the poll loop waits on together with its next deadline. No work is
//! ever done in a signal handler, because there is none.
//!
//! This is the crate's only `unsafe` code: rustix 1.x has neither `pthread_sigmask` nor
//! `signalfd`, so they come from libc. Block the signals before any thread exists (the
//! collector has one thread; tests of signal handling run the binary as a child process).
#![allow(unsafe_code)]

use rustix::event::{PollFd, PollFlags, poll};
use rustix::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use rustix::time::Timespec;
use std::io;

/// The signals the collector acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Reload the configuration.
    Hup,
    /// Stop: last push, exit 0.
    Term,
    /// Same as `Term` (Ctrl-C).
    Int,
    /// Log one health line.
    Usr1,
}

/// The blocked signals and the descriptor they are read from.
///
/// Waits inside an operation (a PostgreSQL query, an HTTPS request) poll the signal fd too:
/// [`Signals::stop_requested`] reads what is pending into a small queue, so a stop ends the
/// operation at once while SIGHUP and SIGUSR1 stay queued for the loop ([`Signals::next`]).
pub struct Signals {
    fd: OwnedFd,
    queue: core::cell::RefCell<heapless::Deque<Signal, 8>>,
}

const HANDLED: [libc::c_int; 4] = [libc::SIGHUP, libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];

impl Signals {
    /// Blocks the handled signals for this thread and opens a non-blocking signalfd for them.
    pub fn install() -> io::Result<Signals> {
        // SAFETY: sigset_t is plain data; sigemptyset initializes it before any other use.
        let mut set: libc::sigset_t = unsafe { core::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        for sig in HANDLED {
            // SAFETY: `set` was initialized by sigemptyset; `sig` is a valid signal number.
            unsafe { libc::sigaddset(&mut set, sig) };
        }
        // SAFETY: `set` is initialized; a null old-set pointer is allowed.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, core::ptr::null_mut()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // SAFETY: -1 asks for a new descriptor; `set` is initialized; flags are valid.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals {
            fd,
            queue: core::cell::RefCell::new(heapless::Deque::new()),
        })
    }

    /// The descriptor to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next pending signal, queued or not yet read, if any (never blocks).
    pub fn next(&self) -> Option<Signal> {
        if let Some(s) = self.queue.borrow_mut().pop_front() {
            return Some(s);
        }
        self.read_one()
    }

    /// Moves every signal waiting on the fd into the queue; true when SIGTERM or SIGINT is
    /// queued (the operation under way should stop; the loop then exits).
    pub fn stop_requested(&self) -> bool {
        while let Some(s) = self.read_one() {
            let mut q = self.queue.borrow_mut();
            // A full queue keeps the oldest eight: repeats of the same signal add nothing.
            if !q.iter().any(|&x| x == s) {
                let _ = q.push_back(s);
            }
        }
        self.stop_queued()
    }

    /// Whether SIGTERM or SIGINT is already queued by [`Signals::stop_requested`], without a
    /// system call: for checks between steps that do not wait (a wait sees a new signal on
    /// the fd, and reads it then).
    pub fn stop_queued(&self) -> bool {
        self.queue
            .borrow()
            .iter()
            .any(|s| matches!(s, Signal::Term | Signal::Int))
    }

    /// Whether signals were queued by [`Signals::stop_requested`] and not yet taken: the loop
    /// must handle them before it sleeps, since the fd no longer shows them.
    pub fn queued(&self) -> bool {
        !self.queue.borrow().is_empty()
    }

    /// Reads one signal from the fd (never blocks).
    fn read_one(&self) -> Option<Signal> {
        // struct signalfd_siginfo is 128 bytes; ssi_signo is its first field (u32).
        let mut info = [0u8; 128];
        loop {
            match rustix::io::read(&self.fd, &mut info) {
                Ok(128) => {
                    let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                    return match signo as libc::c_int {
                        libc::SIGHUP => Some(Signal::Hup),
                        libc::SIGTERM => Some(Signal::Term),
                        libc::SIGINT => Some(Signal::Int),
                        libc::SIGUSR1 => Some(Signal::Usr1),
                        _ => continue,
                    };
                }
                Err(rustix::io::Errno::INTR) => continue,
                _ => return None,
            }
        }
    }
}

/// What ended a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The deadline passed.
    Deadline,
    /// A signal is pending on the signal fd.
    Signal,
    /// `other` is ready (readable or writable as asked, or hung up).
    Ready,
}

/// Waits until `timeout_ns` has passed, a signal is pending, or `other` (with `events`) is ready:
/// the one wait primitive of the collector (docs/protocol.md, "Transport", "waiting").
pub fn wait(
    signals: &Signals,
    other: Option<(BorrowedFd<'_>, PollFlags)>,
    timeout_ns: u64,
) -> io::Result<Woken> {
    let timeout = Timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as i64,
        tv_nsec: (timeout_ns % 1_000_000_000) as i64,
    };
    let mut fds = [
        PollFd::new(&signals.fd, PollFlags::IN),
        PollFd::from_borrowed_fd(
            other.map_or(signals.fd(), |(fd, _)| fd),
            other.map_or(PollFlags::empty(), |(_, ev)| ev),
        ),
    ];
    let n = if other.is_some() { 2 } else { 1 };
    match poll(&mut fds[..n], Some(&timeout)) {
        Ok(0) => Ok(Woken::Deadline),
        Ok(_) if !fds[0].revents().is_empty() => Ok(Woken::Signal),
        Ok(_) => Ok(Woken::Ready),
        // An interrupted poll is a spurious wake-up: the caller re-checks its deadline.
        Err(rustix::io::Errno::INTR) => Ok(Woken::Deadline),
        Err(e) => Err(e.into()),
    }
}
