//! `pg_extensions` (docs/metrics.md, `pg_replication` … `pg_schema`): per monitored database, over
//! its own connection, the installed extensions (`pg_extension`) with version, schema and comment.

use super::client::PgError;
use super::pool::SharedPool;
use super::sql::extensions as sql;
use super::{CollectionConn, each_database, text};
use crate::collect::{CollectError, Collector, Now, Output};
use crate::util::Rfc3339;
use serde::Serialize;

pub struct PgExtensions {
    pool: SharedPool,
}

impl PgExtensions {
    pub fn new(pool: SharedPool) -> PgExtensions {
        PgExtensions { pool }
    }
}

#[derive(Serialize)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: Rfc3339,
    database: &'a str,
    extensions: Vec<Extension>,
}

#[derive(Serialize)]
struct Extension {
    name: Option<String>,
    version: Option<String>,
    schema: Option<String>,
    relocatable: Option<bool>,
    description: Option<String>,
}

fn read(c: &mut CollectionConn<'_>) -> Result<Vec<Extension>, PgError> {
    let mut list = Vec::new();
    for r in c.query(sql::EXTENSIONS)?.iter() {
        list.push(Extension {
            name: text(&r, "extname")?,
            version: text(&r, "extversion")?,
            schema: text(&r, "nspname")?,
            relocatable: r.get_bool("extrelocatable")?,
            description: text(&r, "description")?,
        });
    }
    Ok(list)
}

impl Collector for PgExtensions {
    fn name(&self) -> &'static str {
        "pg_extensions"
    }

    fn collect(&mut self, now: Now, out: &mut Output<'_>) -> Result<(), CollectError> {
        each_database(
            &self.pool,
            now,
            out,
            |c, _| read(c),
            |out, database, extensions| {
                out.emit(
                    0,
                    &Element {
                        kind: "pg_extensions",
                        timestamp: now.wall.rfc3339(),
                        database,
                        extensions,
                    },
                )
            },
        )?;
        Ok(())
    }
}
