//! Sinks take the elements waiting in the buffer once per push round and report each
//! element's outcome. A sink is delivery only: a round, the time of the next attempt while
//! failing, the last push. This file has the stdout sink of `run --stdout` and `once`; the
//! HTTPS sink (`push::sink`: batches kept across resends, backoff) implements the same trait.
//! Not here: configuration, config pull, identity (the run loop and the backend client).

use super::envelope::{self, Header};
use super::{ElementBuffer, ElementMeta, Outcome, Stats};
use crate::util::WallTime;
use std::io::Write;

/// What a push round needs to know besides the buffer.
#[derive(Debug, Clone, Copy)]
pub struct Round<'a> {
    pub collector_id: &'a str,
    pub hostname: &'a str,
    pub now: WallTime,
    /// The same instant on the monotonic clock (ns): what retry times are measured in.
    pub mono_ns: u64,
    pub max_batch_bytes: usize,
}

#[derive(Debug)]
pub enum SinkError {
    /// The reader went away (stdout closed): the process ends quietly.
    Closed,
    /// The round failed; elements not reported stay waiting (or in flight) for the next round.
    Failed(String),
    /// The round failed and the sink has logged it (first failure, backoff steps) and
    /// scheduled its retry ([`Sink::next_wakeup`]); the loop only counts it.
    Retry(String),
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SinkError::Closed => f.write_str("output closed"),
            SinkError::Failed(msg) | SinkError::Retry(msg) => f.write_str(msg),
        }
    }
}

pub trait Sink {
    /// One push round: deliver what is waiting in `buffer`, reporting the final outcome of
    /// every element taken out of it through `report`, and updating the push figures of
    /// `stats` (`last_push_status`, `batches_rejected`, `metrics_dropped` for elements it drops).
    fn push_round(
        &mut self,
        round: &Round<'_>,
        buffer: &mut ElementBuffer,
        report: &mut dyn FnMut(ElementMeta, Outcome),
        stats: &mut Stats,
    ) -> Result<(), SinkError>;

    /// While failing: the monotonic time (ns) of the next attempt, which replaces the
    /// `push_interval` schedule until a round succeeds.
    fn next_wakeup(&self) -> Option<u64> {
        None
    }

    /// The next round is the last one (SIGTERM): it ignores the backoff, and every wait ends
    /// by `deadline`, whatever signals arrive.
    fn last_push(&mut self, _deadline: std::time::Instant) {}

    /// After a collection round (`exit`: after the last push): a sink with an outage spool
    /// moves what memory holds into it while the backend fails (at exit: whenever memory
    /// holds anything), reporting [`Outcome::Spooled`] for each element once it is durable.
    fn spool_memory(
        &mut self,
        _buffer: &mut ElementBuffer,
        _report: &mut dyn FnMut(ElementMeta, Outcome),
        _stats: &mut Stats,
        _exit: bool,
    ) {
    }
}

/// What the stdout sink writes to: any writer, or one whose waits for its reader end by the
/// last push's deadline (`run --stdout`: `sys::stdout::Stdout`).
pub trait LineOut: Write {
    /// Every wait from now on ends by `deadline`, whatever signals arrive.
    fn last_writes(&mut self, _deadline: std::time::Instant) {}
}

impl LineOut for Vec<u8> {}
impl LineOut for std::io::StdoutLock<'_> {}
impl LineOut for crate::sys::stdout::Stdout<'_> {
    fn last_writes(&mut self, deadline: std::time::Instant) {
        self.set_deadline(deadline);
    }
}

/// Bytes the stdout sink hands to its writer at a time.
const STDOUT_PIECE: usize = 64 * 1024;

/// Writes each round as one envelope line ("everything waiting, not split"): `run --stdout`.
/// An element is delivered once its line is written and flushed.
pub struct StdoutSink<W: LineOut> {
    out: W,
    pretty: bool,
    body: Vec<u8>,
    taken: Vec<ElementMeta>,
}

impl<W: LineOut> StdoutSink<W> {
    pub fn new(out: W, pretty: bool) -> Self {
        StdoutSink {
            out,
            pretty,
            body: Vec::new(),
            taken: Vec::new(),
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: LineOut> Sink for StdoutSink<W> {
    fn last_push(&mut self, deadline: std::time::Instant) {
        self.out.last_writes(deadline);
    }

    fn push_round(
        &mut self,
        round: &Round<'_>,
        buffer: &mut ElementBuffer,
        report: &mut dyn FnMut(ElementMeta, Outcome),
        _stats: &mut Stats,
    ) -> Result<(), SinkError> {
        let batch_id = envelope::new_batch_id();
        let header = Header {
            collector_id: round.collector_id,
            hostname: round.hostname,
            timestamp: round.now,
            batch_id: &batch_id,
            version: env!("CARGO_PKG_VERSION"),
        };
        self.taken.clear();
        let written = if self.pretty {
            // Re-indent through a parse: only `once --pretty` takes this path (one round).
            envelope::build(&header, buffer, None, &mut self.body, &mut self.taken);
            let value: serde_json::Value = serde_json::from_slice(&self.body)
                .map_err(|e| SinkError::Failed(format!("envelope is not valid JSON: {e}")))?;
            self.body.clear();
            // unwrap: writing a Value into a Vec cannot fail.
            serde_json::to_writer_pretty(&mut self.body, &value).unwrap();
            self.body.push(b'\n');
            self.out.write_all(&self.body)
        } else {
            // In pieces: a round of 30 MB is not copied whole beside the buffer.
            let out = &mut self.out;
            envelope::stream(
                &header,
                buffer,
                &mut self.body,
                &mut self.taken,
                STDOUT_PIECE,
                &mut |piece| out.write_all(piece),
            )
        }
        .and_then(|()| self.out.flush());
        if self.body.capacity() > 4 * STDOUT_PIECE {
            self.body = Vec::new();
        }
        match written {
            Ok(()) => {
                for meta in self.taken.drain(..) {
                    report(meta, Outcome::Delivered);
                }
                Ok(())
            }
            // The line may be partly written: its elements are neither delivered nor dropped;
            // like elements waiting at exit they are lost from memory (docs/protocol.md, "Delivery model").
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(SinkError::Closed),
            Err(e) => Err(SinkError::Failed(format!("cannot write to stdout: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::DropReason;

    #[test]
    fn stdout_sink_writes_one_line_per_round_and_reports_delivery() {
        let mut buffer = ElementBuffer::new(4096);
        for tag in 0..3 {
            buffer
                .push(
                    ElementMeta { source: 1, tag },
                    b"{\"type\":\"x\"}",
                    &mut |_, _: DropReason| panic!(),
                )
                .unwrap();
        }
        let mut sink = StdoutSink::new(Vec::new(), false);
        let round = Round {
            collector_id: "unregistered",
            hostname: "h",
            now: WallTime::default(),
            mono_ns: 0,
            max_batch_bytes: 64,
        };
        let mut delivered = Vec::new();
        let mut stats = Stats::default();
        sink.push_round(
            &round,
            &mut buffer,
            &mut |m, o| delivered.push((m.tag, o)),
            &mut stats,
        )
        .unwrap();
        sink.push_round(
            &round,
            &mut buffer,
            &mut |_, _| panic!("empty round"),
            &mut stats,
        )
        .unwrap();
        let out = String::from_utf8(sink.into_inner()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        // Not split, although far above max_batch_bytes.
        assert_eq!(first["metrics_count"], 3);
        let second: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(second["metrics_count"], 0);
        assert_eq!(
            delivered,
            vec![
                (0, Outcome::Delivered),
                (1, Outcome::Delivered),
                (2, Outcome::Delivered)
            ]
        );
    }

    struct Broken;
    impl LineOut for Broken {}
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn closed_output_is_reported_and_nothing_is_called_delivered() {
        let mut buffer = ElementBuffer::new(4096);
        buffer
            .push(
                ElementMeta { source: 1, tag: 9 },
                b"{}",
                &mut |_, _| panic!(),
            )
            .unwrap();
        let mut sink = StdoutSink::new(Broken, false);
        let round = Round {
            collector_id: "c",
            hostname: "h",
            now: WallTime::default(),
            mono_ns: 0,
            max_batch_bytes: 64,
        };
        let r = sink.push_round(
            &round,
            &mut buffer,
            &mut |_, _| panic!("not delivered"),
            &mut Stats::default(),
        );
        assert!(matches!(r, Err(SinkError::Closed)));
    }
}
