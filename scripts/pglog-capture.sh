#!/usr/bin/env bash
# Captures real PostgreSQL server logs for fixtures/pglog/ (the pg_log parser's fixtures).
#
# Starts a throw-away cluster twice (as the postgres user when run as root), with
# logging_collector = on, log_destination = 'stderr,csvlog,jsonlog', log_timezone =
# 'Europe/Berlin', and runs the same workload each time:
#   run 1: log_line_prefix = '%m [%p] %q%u@%d '   (Debian's default) -> debian/ csvlog/ jsonlog/
#   run 2: a prefix with every escape and padding                    -> every-escape/
# The workload: errors with DETAIL/HINT/CONTEXT, a multi-line statement, a NOTICE and a
# multi-line WARNING, DEBUG lines, slow statements under log_min_duration_statement = 0,
# errors under log_error_verbosity = verbose, a failed login, TCP and Unix-socket sessions,
# an application_name with a space, non-ASCII text, quotes and commas, an error in a
# parallel worker (so %P has a value).
#
# Usage: scripts/pglog-capture.sh [OUT_DIR [formats|explain]]   (default fixtures/pglog)
#   explain: one run with the Debian prefix, files OUT_DIR/postgresql.{log,csv,json}, of the
#   auto_explain workload (plans in json and text, one plan over 64 KiB in each, syntax errors
#   with a cursor position, a multi-line statement, DETAIL/HINT/CONTEXT), e.g.
#     scripts/pglog-capture.sh fixtures/pglog/auto-explain explain
#   formats: one run with the Debian prefix only, files OUT_DIR/postgresql.{log,csv,json}
#   (json on PG 15+), for other server majors, e.g. with the npm binaries of pg-matrix.sh:
#   PG_BIN=/var/tmp/pganalytics-pg/12.22.0-beta.15/native/bin \
#   PG_LD_LIBRARY_PATH=/var/tmp/pganalytics-pg/12.22.0-beta.15/native/lib \
#     scripts/pglog-capture.sh fixtures/pglog/pg12 formats
# PG_BIN overrides /usr/lib/postgresql/15/bin (psql comes from there or, when PG_BIN has
# none, from the system).
set -euo pipefail

BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
OUT=$(realpath -m "${1:-fixtures/pglog}")
MODE=${2:-full}
PSQL=$BIN/psql
[ -x "$PSQL" ] || PSQL=$(command -v psql)
MAJOR=$(LD_LIBRARY_PATH=${PG_LD_LIBRARY_PATH:-} "$BIN/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/')
DEST='stderr,csvlog'
[ "$MAJOR" -ge 15 ] && DEST='stderr,csvlog,jsonlog'
QUERYID=''
[ "$MAJOR" -ge 14 ] && QUERYID='compute_query_id = on'
PARALLEL=force_parallel_mode
[ "$MAJOR" -ge 16 ] && PARALLEL=debug_parallel_query
W=$(mktemp -d /tmp/pglog-capture.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
PASS=capture-pass
trap 'as_pg "$BIN/pg_ctl" -D "$W/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$W"' EXIT

as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres "$W"

EVERY='%m %n %t [%p:%l:%3P] %-17b %c %s v=%v x=%x e=%e %% %q%u@%d app=%a h=%h r=%r i=%i q=%Q |%-10u|%8p| '

echo "$PASS" >"$W/pw"
as_pg env LD_LIBRARY_PATH="${PG_LD_LIBRARY_PATH:-}" "$BIN/initdb" -D "$W/data" -U test --auth=scram-sha-256 --pwfile="$W/pw" -E UTF8 --no-locale --no-sync >/dev/null

sql() { # sql CONNINFO <<< statements
  PGPASSWORD=$PASS "$PSQL" -X -q -v ON_ERROR_STOP=0 "$@" >/dev/null 2>&1 || true
}

workload() {
  local tcp="host=127.0.0.1 port=$PORT user=test dbname=postgres"
  local unix="host=$W/data port=$PORT user=test dbname=postgres"
  sql "$tcp application_name=capture" -v parallel="$PARALLEL" <<'EOF'
create table if not exists t(id int primary key, v text);
truncate t;
insert into t values (1, 'a');
insert into t values (1, 'dup');
select * from nosuch;
select vv from t;
select 1,
       2,
       x
  from t
 where id = 1;
set log_min_messages = info;
do $$ begin raise notice 'hello notice'; end $$;
do $$ begin raise warning 'multi-line warning
second line' using detail = 'detail line 1
detail line 2', hint = 'a hint, with "quotes"'; end $$;
reset log_min_messages;
select 'a,"b"'::int;
select 'héllo ✓ ünïcode'::int;
create or replace function f() returns int language plpgsql as $$ begin return 1/0; end $$;
select f();
set log_min_duration_statement = 0;
select pg_sleep(0.02);
select count(*) from generate_series(1, 200000);
select 'done with slow part';
reset log_min_duration_statement;
set log_error_verbosity = verbose;
select 1/0;
select * from nosuch_verbose;
reset log_error_verbosity;
set client_min_messages = warning;
set log_min_messages = debug5;
select 1;
reset log_min_messages;
set :parallel = on;
set parallel_setup_cost = 0;
set parallel_tuple_cost = 0;
set min_parallel_table_scan_size = 0;
set parallel_leader_participation = off;
select 1 / (id - 1) from t;
reset :parallel;
EOF
  sql "$unix application_name='my app'" <<'EOF'
begin;
select * from t where id = 'x';
rollback;
do $$ begin raise exception 'custom failure' using errcode = 'P0001', detail = 'it, "failed"'; end $$;
EOF
  PGPASSWORD=wrong "$PSQL" -X -q "host=127.0.0.1 port=$PORT user=test dbname=postgres" -c 'select 1' >/dev/null 2>&1 || true
  PGPASSWORD=$PASS "$PSQL" -X -q "host=127.0.0.1 port=$PORT user=test dbname=nosuchdb" -c 'select 1' >/dev/null 2>&1 || true
  sql "$tcp" <<'EOF'
checkpoint;
EOF
}

explain_workload() {
  local tcp="host=127.0.0.1 port=$PORT user=test dbname=postgres"
  # A plan over the 64 KiB entry cap: a UNION ALL of 300 branches.
  local big="select 0 as n, v from t where id > 0" i
  for i in $(seq 1 300); do big="$big
union all select $i, v from t where id > $i"; done
  sql "$tcp application_name=explain" <<EOF
create table t(id int primary key, v text);
insert into t values (1, 'a'), (2, 'b');
select * fro t;
select 1,
       2,
       nosuch
  from t;
select * from t where id = 'x';
do \$\$ begin raise warning 'warned' using detail = 'some detail', hint = 'some hint'; end \$\$;
LOAD 'auto_explain';
set auto_explain.log_min_duration = 0;
set auto_explain.log_format = json;
select count(*) from t where id > 0;
select t.id,
       t.v
  from t join t t2 on t2.id = t.id
 where t.v <> 'x "quoted"';
set auto_explain.log_format = text;
select count(*) from t where id > 0;
select t.id,
       t.v
  from t join t t2 on t2.id = t.id
 where t.v <> 'ünïcode';
set auto_explain.log_format = json;
$big;
set auto_explain.log_format = text;
$big;
reset auto_explain.log_min_duration;
select 1/0;
EOF
}

capture() { # capture PREFIX [WORKLOAD]
  cat >>"$W/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$W/data'
fsync = off
logging_collector = on
log_destination = '$DEST'
log_directory = 'log'
log_filename = 'postgresql'
log_rotation_age = 0
log_rotation_size = 0
log_timezone = 'Europe/Berlin'
log_connections = on
log_disconnections = on
log_checkpoints = on
$QUERYID
log_line_prefix = '$1'
EOF
  as_pg env LD_LIBRARY_PATH="${PG_LD_LIBRARY_PATH:-}" "$BIN/pg_ctl" -D "$W/data" -w -l "$W/pg_ctl.log" start >/dev/null
  ${2:-workload}
  as_pg env LD_LIBRARY_PATH="${PG_LD_LIBRARY_PATH:-}" "$BIN/pg_ctl" -D "$W/data" -w -m fast stop >/dev/null
}

cp "$W/data/postgresql.conf" "$W/postgresql.conf.orig"
if [ "$MODE" = formats ]; then
  mkdir -p "$OUT"
  capture '%m [%p] %q%u@%d '
  cp "$W/data/log/postgresql" "$OUT/postgresql.log"
  cp "$W/data/log/postgresql.csv" "$OUT/postgresql.csv"
  [ -f "$W/data/log/postgresql.json" ] && cp "$W/data/log/postgresql.json" "$OUT/postgresql.json"
  chmod 644 "$OUT"/postgresql.*
  LD_LIBRARY_PATH=${PG_LD_LIBRARY_PATH:-} "$BIN/postgres" --version
  wc -l "$OUT"/postgresql.*
  exit 0
fi
if [ "$MODE" = explain ]; then
  mkdir -p "$OUT"
  capture '%m [%p] %q%u@%d ' explain_workload
  cp "$W/data/log/postgresql" "$OUT/postgresql.log"
  cp "$W/data/log/postgresql.csv" "$OUT/postgresql.csv"
  cp "$W/data/log/postgresql.json" "$OUT/postgresql.json"
  chmod 644 "$OUT"/postgresql.*
  "$BIN/postgres" --version
  wc -c "$OUT"/postgresql.*
  exit 0
fi
mkdir -p "$OUT/debian" "$OUT/csvlog" "$OUT/jsonlog" "$OUT/every-escape"

capture '%m [%p] %q%u@%d '
cp "$W/data/log/postgresql" "$OUT/debian/postgresql.log"
cp "$W/data/log/postgresql.csv" "$OUT/csvlog/postgresql.csv"
cp "$W/data/log/postgresql.json" "$OUT/jsonlog/postgresql.json"

rm -rf "$W/data/log"
cp "$W/postgresql.conf.orig" "$W/data/postgresql.conf"
capture "$EVERY"
cp "$W/data/log/postgresql" "$OUT/every-escape/postgresql.log"
printf '%s' "$EVERY" >"$OUT/every-escape/log_line_prefix"
printf '%s' '%m [%p] %q%u@%d ' >"$OUT/debian/log_line_prefix"

chmod 644 "$OUT"/*/*
"$BIN/postgres" --version
wc -l "$OUT"/*/postgresql.*
