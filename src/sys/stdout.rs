//! Standard output for `run --stdout`, written so that a reader that stops reading cannot hold
//! the agent past a stop signal. Each write first goes whole with `RWF_NOWAIT` (pipes, sockets
//! and `/dev/null` take it; a pipe takes what room it has): no wait, one system call for 64 KiB
//! where 4 KiB writes needed sixteen and a `poll` each. Where that would block, and where
//! stdout does not take `RWF_NOWAIT` (a terminal, most regular files, kernels before 4.14),
//! `poll` waits on stdout and the signal fd together, and one write is at most `PIPE_BUF`
//! bytes, which a pipe that polls writable takes without blocking. The descriptor stays
//! blocking (`O_NONBLOCK` would change it for every process that shares it, a terminal
//! included).

use super::signals::{Signals, Woken, wait};
use rustix::event::PollFlags;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// At most this much per `write(2)`: a pipe that polls writable has room for it.
const CHUNK: usize = 4096;
/// A wait for the reader before a stop is re-armed in slices of this length (no deadline ends
/// it: the reader decides; a stop signal does). Errors are never `Interrupted`, which
/// `write_all` would retry.
const SLICE: Duration = Duration::from_secs(1);

pub struct Stdout<'s> {
    out: io::Stdout,
    signals: &'s Signals,
    /// The last push's deadline, once it started.
    deadline: Option<Instant>,
    /// Whether the last byte written ended a line.
    at_line_start: bool,
    /// A wait ended with a line cut: nothing more is written (it would glue onto that line).
    cut: bool,
    /// Whether stdout may take writes with `RWF_NOWAIT` (until it refuses one).
    nowait: bool,
}

impl<'s> Stdout<'s> {
    pub fn new(signals: &'s Signals) -> Self {
        Stdout {
            out: io::stdout(),
            signals,
            deadline: None,
            at_line_start: true,
            cut: false,
            nowait: true,
        }
    }

    /// Every wait from now on ends by `deadline` (the last push), whatever signals arrive.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Waits until stdout takes bytes. Before the last push a stop signal ends the wait at
    /// once (the loop then makes the last push); during it, the deadline does.
    fn wait_writable(&mut self) -> io::Result<()> {
        let fd = self.out.as_fd();
        loop {
            let now = Instant::now();
            let slice = match self.deadline {
                Some(d) if now >= d => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the reader of stdout did not read before the last push's deadline",
                    ));
                }
                Some(d) => d - now,
                // A stop read earlier (by a wait elsewhere) no longer shows on the fd.
                None if self.signals.stop_queued() => {
                    return Err(io::Error::other(
                        "stopped while waiting for the reader of stdout",
                    ));
                }
                None => SLICE,
            };
            let ns = u64::try_from(slice.as_nanos()).unwrap_or(u64::MAX);
            // A signal, or a slice's end, goes round the loop again; the signal fd is read
            // only when it has something (not once per write: a large line is many writes).
            match wait(self.signals, Some((fd, PollFlags::OUT)), ns)? {
                Woken::Ready => return Ok(()),
                // Read into the queue (left on the fd it would end every wait at once).
                Woken::Signal => {
                    self.signals.stop_requested();
                }
                Woken::Deadline => {}
            }
        }
    }
}

impl Stdout<'_> {
    /// Notes where the `written` bytes of `buf` ended.
    fn wrote(&mut self, buf: &[u8], written: usize) -> usize {
        if let Some(last) = written.checked_sub(1).and_then(|i| buf.get(i)) {
            self.at_line_start = *last == b'\n';
        }
        written
    }
}

impl Write for Stdout<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.cut {
            return Err(io::Error::other(
                "a line on stdout was cut by the stop signal; nothing more is written",
            ));
        }
        while self.nowait {
            // u64::MAX: at the current offset, as write(2).
            match rustix::io::pwritev2(
                self.out.as_fd(),
                &[io::IoSlice::new(buf)],
                u64::MAX,
                rustix::io::ReadWriteFlags::NOWAIT,
            ) {
                Ok(written) => return Ok(self.wrote(buf, written)),
                Err(rustix::io::Errno::INTR) => continue,
                // Full: wait below, then at least PIPE_BUF bytes go.
                Err(rustix::io::Errno::AGAIN) => break,
                // Not for this file or this kernel: poll and PIPE_BUF writes from now on.
                Err(
                    rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS,
                ) => self.nowait = false,
                Err(e) => return Err(e.into()),
            }
        }
        if let Err(e) = self.wait_writable() {
            self.cut = !self.at_line_start;
            return Err(e);
        }
        let n = buf.len().min(CHUNK);
        loop {
            match rustix::io::write(self.out.as_fd(), &buf[..n]) {
                Ok(written) => return Ok(self.wrote(buf, written)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
