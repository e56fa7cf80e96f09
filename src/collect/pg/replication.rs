//! `pg_replication` (docs/metrics.md, `pg_replication` … `pg_schema`): one cluster-wide element over
//! the `[postgres] database` connection: the server's role, its WAL senders, its replication slots
//! with the WAL they retain, its WAL receiver (standby), and every database's distance to XID
//! wraparound.
//!
//! A standby and a primary give the same element: what does not exist on that side is `null`
//! (`wal_receiver` on a primary) or empty (`replication_status` on a standby that feeds no
//! cascading standby). Queries are chosen from `pg_is_in_recovery()` and
//! `server_version_num` ([`sql::replication`]), never by trying.

use super::client::PgError;
use super::pool::SharedPool;
use super::sql::replication as sql;
use super::{CollectionConn, cluster_wide, emit_cluster, text, time};
use crate::collect::{CollectError, Collector, Now, Output, round2};
use serde::Serialize;

/// XID age at which a database reaches wraparound (2^31 − 1).
pub const XID_WRAPAROUND_AGE: i64 = 2_147_483_647;
/// `at_risk` below this share of the XID space left (the historical threshold).
pub const AT_RISK_PERCENT: f64 = 20.0;

pub struct PgReplication {
    pool: SharedPool,
}

impl PgReplication {
    pub fn new(pool: SharedPool) -> PgReplication {
        PgReplication { pool }
    }
}

#[derive(Serialize, Default)]
struct Replication {
    is_standby: Option<bool>,
    replication_status: Vec<Sender>,
    replication_slots: Vec<Slot>,
    wal_receiver: Option<WalReceiver>,
    wraparound_risk: Vec<Wraparound>,
}

#[derive(Serialize)]
struct Sender {
    server_pid: Option<i64>,
    usename: Option<String>,
    application_name: Option<String>,
    client_addr: Option<String>,
    backend_start: Option<String>,
    state: Option<String>,
    sync_state: Option<String>,
    sent_lsn: Option<String>,
    write_lsn: Option<String>,
    flush_lsn: Option<String>,
    replay_lsn: Option<String>,
    write_lag_ms: Option<f64>,
    flush_lag_ms: Option<f64>,
    replay_lag_ms: Option<f64>,
    behind_by_mb: Option<f64>,
    behind_by_bytes: Option<i64>,
}

#[derive(Serialize)]
struct Slot {
    slot_name: Option<String>,
    slot_type: Option<String>,
    plugin: Option<String>,
    database: Option<String>,
    temporary: Option<bool>,
    active: Option<bool>,
    /// `active_pid`.
    backend_pid: Option<i64>,
    restart_lsn: Option<String>,
    confirmed_flush_lsn: Option<String>,
    bytes_retained: Option<i64>,
    /// PG 13+.
    wal_status: Option<String>,
    /// PG 13+.
    safe_wal_size: Option<i64>,
    /// PG 14+.
    two_phase: Option<bool>,
    /// PG 16+.
    conflicting: Option<bool>,
    /// PG 17+.
    invalidation_reason: Option<String>,
}

#[derive(Serialize)]
struct WalReceiver {
    status: Option<String>,
    sender_host: Option<String>,
    sender_port: Option<i64>,
    slot_name: Option<String>,
    receive_start_lsn: Option<String>,
    /// PG 13+ (`null` on 12).
    written_lsn: Option<String>,
    /// `received_lsn` on PG 12.
    flushed_lsn: Option<String>,
    received_tli: Option<i64>,
    latest_end_lsn: Option<String>,
    latest_end_time: Option<String>,
    last_msg_send_time: Option<String>,
    last_msg_receipt_time: Option<String>,
    receive_lsn: Option<String>,
    replay_lsn: Option<String>,
    last_replay_time: Option<String>,
    /// Time since the last replayed transaction committed on the primary: replay lag while
    /// the primary writes, growing on an idle primary.
    replay_delay_secs: Option<f64>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Wraparound {
    database: Option<String>,
    xid_age: Option<i64>,
    percent_until_wraparound: Option<f64>,
    at_risk: Option<bool>,
}

impl Wraparound {
    /// The share of the XID space left before wraparound, from the age of `datfrozenxid`.
    pub fn new(database: Option<String>, xid_age: Option<i64>) -> Wraparound {
        let percent = xid_age.map(|age| {
            let left = XID_WRAPAROUND_AGE.saturating_sub(age).max(0);
            round2(left as f64 / XID_WRAPAROUND_AGE as f64 * 100.0)
        });
        Wraparound {
            database,
            xid_age,
            percent_until_wraparound: percent,
            at_risk: percent.map(|p| p < AT_RISK_PERCENT),
        }
    }
}

/// Bytes as MiB, 2 decimals.
fn mib(bytes: Option<i64>) -> Option<f64> {
    bytes.map(|b| round2(b as f64 / 1_048_576.0))
}

fn read(c: &mut CollectionConn<'_>) -> Result<Replication, PgError> {
    let version = c.version();
    let rows = c.query(sql::STATE)?;
    let is_standby = rows
        .iter()
        .next()
        .map(|r| r.get_bool("is_standby"))
        .transpose()?
        .flatten();
    // Unknown (no row) is read like a standby: it avoids pg_current_wal_lsn().
    let standby = is_standby != Some(false);

    let mut senders = Vec::new();
    for r in c.query(&sql::senders(standby))?.iter() {
        let behind = r.get_i64("behind_by_bytes")?;
        senders.push(Sender {
            server_pid: r.get_i64("pid")?,
            usename: text(&r, "usename")?,
            application_name: text(&r, "application_name")?,
            client_addr: text(&r, "client_addr")?,
            backend_start: time(&r, "backend_start")?,
            state: text(&r, "state")?,
            sync_state: text(&r, "sync_state")?,
            sent_lsn: text(&r, "sent_lsn")?,
            write_lsn: text(&r, "write_lsn")?,
            flush_lsn: text(&r, "flush_lsn")?,
            replay_lsn: text(&r, "replay_lsn")?,
            write_lag_ms: r.get_f64("write_lag_ms")?,
            flush_lag_ms: r.get_f64("flush_lag_ms")?,
            replay_lag_ms: r.get_f64("replay_lag_ms")?,
            behind_by_mb: mib(behind),
            behind_by_bytes: behind,
        });
    }

    let mut slots = Vec::new();
    for r in c.query(&sql::slots(version, standby))?.iter() {
        slots.push(Slot {
            slot_name: text(&r, "slot_name")?,
            slot_type: text(&r, "slot_type")?,
            plugin: text(&r, "plugin")?,
            database: text(&r, "database")?,
            temporary: r.get_bool("temporary")?,
            active: r.get_bool("active")?,
            backend_pid: r.get_i64("active_pid")?,
            restart_lsn: text(&r, "restart_lsn")?,
            confirmed_flush_lsn: text(&r, "confirmed_flush_lsn")?,
            bytes_retained: r.get_i64("bytes_retained")?,
            wal_status: text(&r, "wal_status")?,
            safe_wal_size: r.get_i64("safe_wal_size")?,
            two_phase: r.get_bool("two_phase")?,
            conflicting: r.get_bool("conflicting")?,
            invalidation_reason: text(&r, "invalidation_reason")?,
        });
    }

    let mut wal_receiver = None;
    if standby {
        let rows = c.query(&sql::wal_receiver(version))?;
        if let Some(r) = rows.iter().next() {
            wal_receiver = Some(WalReceiver {
                status: text(&r, "status")?,
                sender_host: text(&r, "sender_host")?,
                sender_port: r.get_i64("sender_port")?,
                slot_name: text(&r, "slot_name")?,
                receive_start_lsn: text(&r, "receive_start_lsn")?,
                written_lsn: text(&r, "written_lsn")?,
                flushed_lsn: text(&r, "flushed_lsn")?,
                received_tli: r.get_i64("received_tli")?,
                latest_end_lsn: text(&r, "latest_end_lsn")?,
                latest_end_time: time(&r, "latest_end_time")?,
                last_msg_send_time: time(&r, "last_msg_send_time")?,
                last_msg_receipt_time: time(&r, "last_msg_receipt_time")?,
                receive_lsn: text(&r, "receive_lsn")?,
                replay_lsn: text(&r, "replay_lsn")?,
                last_replay_time: time(&r, "last_replay_time")?,
                replay_delay_secs: r.get_f64("replay_delay_secs")?.map(round2),
            });
        }
    }

    let mut wraparound = Vec::new();
    for r in c.query(sql::WRAPAROUND)?.iter() {
        wraparound.push(Wraparound::new(text(&r, "datname")?, r.get_i64("xid_age")?));
    }

    Ok(Replication {
        is_standby,
        replication_status: senders,
        replication_slots: slots,
        wal_receiver,
        wraparound_risk: wraparound,
    })
}

impl Collector for PgReplication {
    fn name(&self) -> &'static str {
        "pg_replication"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        let body = cluster_wide(&self.pool, now, out, read)?;
        emit_cluster(out, "pg_replication", now, &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::pg::ClusterElement;

    #[test]
    fn wraparound_share_and_risk() {
        let w = Wraparound::new(Some("app".into()), Some(0));
        assert_eq!(w.percent_until_wraparound, Some(100.0));
        assert_eq!(w.at_risk, Some(false));
        let w = Wraparound::new(None, Some(XID_WRAPAROUND_AGE / 10 * 9));
        assert_eq!(w.percent_until_wraparound, Some(10.0));
        assert_eq!(w.at_risk, Some(true));
        let w = Wraparound::new(None, Some(i64::MAX));
        assert_eq!(w.percent_until_wraparound, Some(0.0));
        let w = Wraparound::new(None, None);
        assert_eq!((w.percent_until_wraparound, w.at_risk), (None, None));
    }

    #[test]
    fn element_has_every_field() {
        let e = ClusterElement {
            kind: "pg_replication",
            timestamp: crate::util::WallTime::default().rfc3339(),
            body: &Replication::default(),
        };
        let v = serde_json::to_value(&e).unwrap();
        for k in [
            "is_standby",
            "replication_status",
            "replication_slots",
            "wal_receiver",
            "wraparound_risk",
        ] {
            assert!(v.get(k).is_some(), "{k} missing");
        }
        assert!(v["wal_receiver"].is_null());
        assert_eq!(mib(Some(3 * 1_048_576 / 2)), Some(1.5));
    }
}
