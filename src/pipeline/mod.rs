//! From collectors to a sink (docs/protocol.md, "Delivery model").
//!
//! ```text
//!  collectors ──emit──▶ ElementBuffer ──take──▶ Sink (stdout, later HTTPS)
//!      ▲                 (fixed bytes,           │
//!      │                  oldest dropped)        │
//!      └──────── outcome(meta, Delivered | Dropped) ◀┘
//! ```
//!
//! Every element carries an [`ElementMeta`]: which source produced it and a tag the source
//! chose (the log reader puts the file offset after the element's entries there). Each element
//! reaches exactly one final [`Outcome`], reported back to its source, so a source can advance
//! what it has acknowledged (log offsets) only over elements that are delivered or dropped.

pub mod buffer;
pub mod envelope;
pub mod sink;
pub mod spool;

pub use buffer::ElementBuffer;

/// Who produced an element, and the source's own tag for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementMeta {
    /// Index of the producing plugin in `config::PLUGIN_NAMES`, or [`HEALTH_SOURCE`].
    pub source: u16,
    pub tag: u64,
}

/// Source id of `collector_health` elements.
pub const HEALTH_SOURCE: u16 = u16::MAX;

/// Why an element was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The buffer was full and this was the oldest element waiting.
    Overflow,
    /// Larger than the element size rule allows (`max_batch_bytes / 4`) or than the buffer.
    TooLarge,
    /// The backend refused its batch (400) or a single element was still too large (413).
    Rejected,
}

/// The final fate of an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    Dropped(DropReason),
    /// Fsynced in the outage spool, which delivers it after a restart (docs/protocol.md, "Spool").
    Spooled,
}

/// Counters the pipeline keeps for `collector_health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Elements dropped by overflow or for their size.
    pub metrics_dropped: u64,
    pub batches_rejected: u64,
    pub push_failures: u64,
    pub last_push_status: Option<u16>,
    /// Log entries cut at `max_message_bytes` or 64 KiB (`collector_health.log_entries_truncated`).
    pub log_entries_truncated: u64,
    /// The outage spool's figures, when `run` has one (`spool_bytes` > 0).
    pub spool: Option<SpoolFigures>,
}

/// `collector_health.spool_bytes`, `spool_elements`, `spool_corrupt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolFigures {
    pub bytes: u64,
    pub elements: u64,
    pub corrupt: u64,
}
