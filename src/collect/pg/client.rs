//! The PostgreSQL client the pg collectors use: `crate::proto::postgres`, re-exported under
//! one short path.

pub use crate::proto::postgres::{Client, ConnectParams, PgError, Row, Rows, Target};
