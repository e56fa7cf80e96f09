//! auto_explain plans in log messages: `duration: N ms  plan:` followed by the plan, in
//! auto_explain's `json` or `text` format (docs/metrics.md, `pg_log`); pure, no I/O.
//!
//! What this does: recognise the message header, split the plan off the message, read the
//! plan's `Query Text` (the entry's `statement`), and keep a `json` plan as its JSON object.
//! What it does not do: cap sizes (the entry's 64 KiB cap applies before; a cut plan arrives
//! here with `cut = true` and stays text), or look inside a text plan beyond its query text.
//!
//! Quirks of the source format (auto_explain.c, explain.c):
//! - The header is `duration: %.3f ms  plan:` then a newline; the plan follows in the same
//!   message (stderr writes each further line after a tab, csvlog and jsonlog keep it in the
//!   message field), so the three formats hold the same text.
//! - `text` format writes `Query Text: ` and the query as is, newlines included, then the plan
//!   with its top node at column 0. Where a multi-line query ends is therefore found by the
//!   first later line at column 0 that looks like a plan node (a `  (cost=` / `  (actual`
//!   annotation, or a node name of explain.c); failing that, the query is its first line.
//! - `json` format writes one object `{"Query Text": …, "Plan": {…}}`; a json plan that does
//!   not parse (cut, or not json) is kept as text.

use serde::Serialize;

/// A plan as the entry carries it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Plan {
    /// auto_explain's `json` format: the whole object (`Query Text`, `Plan`, …).
    Json(serde_json::Value),
    /// Anything else, and every plan cut by the entry cap.
    Text(String),
}

impl Plan {
    /// `"json"` or `"text"` (the entry's `plan_format`).
    pub fn format(&self) -> &'static str {
        match self {
            Plan::Json(_) => "json",
            Plan::Text(_) => "text",
        }
    }
}

/// An auto_explain message taken apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    /// Length of the header `duration: N ms  plan:` in the message (what stays the message).
    pub header: usize,
    pub plan: Plan,
    /// The plan's `Query Text`, when found.
    pub statement: Option<String>,
}

/// Longest duration number read (`%.3f` of a double: far below this in practice).
const MAX_NUMBER: usize = 32;

/// Length of a `duration: N ms  plan:` header at the start of `message` (up to, not
/// including, the newline before the plan).
pub fn header_len(message: &str) -> Option<usize> {
    let rest = message.strip_prefix("duration: ")?;
    let digits = rest
        .bytes()
        .take(MAX_NUMBER + 1)
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    if digits == 0 || digits > MAX_NUMBER {
        return None;
    }
    rest[digits..].strip_prefix(" ms  plan:")?;
    Some("duration: ".len() + digits + " ms  plan:".len())
}

/// Takes apart an auto_explain message; `None` when it is not one (no header, or nothing after
/// it). `cut`: the entry was cut by its cap, so the plan is kept as text.
pub fn parse(message: &str, cut: bool) -> Option<Explained> {
    let header = header_len(message)?;
    let body = message[header..].strip_prefix('\n')?;
    if body.trim().is_empty() {
        return None;
    }
    if body.trim_start().starts_with('{') {
        if !cut
            && let Ok(v @ serde_json::Value::Object(_)) =
                serde_json::from_str::<serde_json::Value>(body)
        {
            let statement = v
                .get("Query Text")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string);
            return Some(Explained {
                header,
                plan: Plan::Json(v),
                statement,
            });
        }
        return Some(Explained {
            header,
            plan: Plan::Text(body.to_string()),
            statement: json_query_text(body),
        });
    }
    Some(Explained {
        header,
        plan: Plan::Text(body.to_string()),
        statement: text_query_text(body),
    })
}

/// The `"Query Text"` string at the start of a json plan that does not parse whole (cut).
fn json_query_text(body: &str) -> Option<String> {
    let rest = body.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix("\"Query Text\"")?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    serde_json::Deserializer::from_str(rest)
        .into_iter::<String>()
        .next()?
        .ok()
}

/// The query of a text plan: after `Query Text: `, up to the first plan node line.
fn text_query_text(body: &str) -> Option<String> {
    let first_end = body.find('\n').unwrap_or(body.len());
    let q = body.strip_prefix("Query Text: ")?;
    let first_end = first_end - "Query Text: ".len();
    let mut end = first_end;
    let mut at = first_end;
    let mut found = false;
    // The first later line that is a plan node ends the query; lines between belong to it.
    while at < q.len() {
        let line_start = at + 1;
        let line_end = q[line_start..]
            .find('\n')
            .map_or(q.len(), |i| line_start + i);
        if is_node_line(&q[line_start..line_end]) {
            found = true;
            break;
        }
        end = line_end;
        at = line_end;
    }
    let end = if found { end } else { first_end };
    Some(q[..end].to_string())
}

/// Node names of explain.c (`ExplainNode`'s `pname`/`sname`) that open a text plan's top line.
const NODES: &[&str] = &[
    "Result",
    "ProjectSet",
    "Insert on",
    "Update on",
    "Delete on",
    "Merge on",
    "Append",
    "Merge Append",
    "Recursive Union",
    "BitmapAnd",
    "BitmapOr",
    "Nested Loop",
    "Merge Join",
    "Hash Join",
    "Seq Scan",
    "Sample Scan",
    "Parallel Seq Scan",
    "Gather",
    "Gather Merge",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Index Scan",
    "Bitmap Heap Scan",
    "Tid Scan",
    "Tid Range Scan",
    "Subquery Scan",
    "Function Scan",
    "Table Function Scan",
    "Values Scan",
    "CTE Scan",
    "Named Tuplestore Scan",
    "WorkTable Scan",
    "Foreign Scan",
    "Custom Scan",
    "Materialize",
    "Memoize",
    "Sort",
    "Incremental Sort",
    "Group",
    "Aggregate",
    "GroupAggregate",
    "HashAggregate",
    "MixedAggregate",
    "Partial Aggregate",
    "Finalize Aggregate",
    "Partial GroupAggregate",
    "Partial HashAggregate",
    "Finalize GroupAggregate",
    "Finalize HashAggregate",
    "WindowAgg",
    "Unique",
    "SetOp",
    "HashSetOp",
    "LockRows",
    "Limit",
    "Hash",
];

/// Whether a text-plan line is a top plan node (column 0).
fn is_node_line(line: &str) -> bool {
    if line.starts_with(' ') || line.starts_with('\t') {
        return false;
    }
    if line.contains("  (cost=") || line.contains("  (actual ") {
        return true;
    }
    NODES.iter().any(|n| {
        line.strip_prefix(n)
            .is_some_and(|r| r.is_empty() || r.starts_with(' '))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "duration: 0.029 ms  plan:\nQuery Text: select t.id,\n       t.v\n  from t\nHash Join  (cost=38.58..67.78 rows=1264 width=36)\n  Hash Cond: (t.id = t2.id)";
    const JSON: &str = "duration: 0.020 ms  plan:\n{\n  \"Query Text\": \"select \\\"a\\\"\\nfrom t;\",\n  \"Plan\": {\n    \"Node Type\": \"Result\"\n  }\n}";

    #[test]
    fn headers() {
        assert_eq!(header_len("duration: 0.020 ms  plan:\n{"), Some(25));
        assert_eq!(header_len("duration: 1 ms  plan:"), Some(21));
        assert_eq!(header_len("duration: 0.020 ms"), None);
        assert_eq!(header_len("duration: 0.020 ms  statement: x"), None);
        assert_eq!(header_len("duration:  ms  plan:"), None);
        let long = format!("duration: {} ms  plan:", "9".repeat(MAX_NUMBER + 1));
        assert_eq!(header_len(&long), None);
    }

    #[test]
    fn text_plan_with_a_multi_line_query() {
        let e = parse(TEXT, false).unwrap();
        assert_eq!(&TEXT[..e.header], "duration: 0.029 ms  plan:");
        assert_eq!(e.plan.format(), "text");
        assert_eq!(e.plan, Plan::Text(TEXT[e.header + 1..].to_string()));
        assert_eq!(
            e.statement.as_deref(),
            Some("select t.id,\n       t.v\n  from t")
        );
        // Costs off: the node name ends the query.
        let m =
            "duration: 1.000 ms  plan:\nQuery Text: select 1\nfrom x\nSeq Scan on x\n  Filter: y";
        assert_eq!(
            parse(m, false).unwrap().statement.as_deref(),
            Some("select 1\nfrom x")
        );
        // No node line found: the first line is the query.
        let m = "duration: 1.000 ms  plan:\nQuery Text: select 1\nfrom x\nsomething";
        assert_eq!(
            parse(m, false).unwrap().statement.as_deref(),
            Some("select 1")
        );
        // Not a text plan with a query: no statement, the plan kept whole.
        let m = "duration: 1.000 ms  plan:\nResult";
        let e = parse(m, false).unwrap();
        assert_eq!((e.statement, e.plan), (None, Plan::Text("Result".into())));
    }

    #[test]
    fn json_plan_whole_and_cut() {
        let e = parse(JSON, false).unwrap();
        assert_eq!(e.plan.format(), "json");
        let Plan::Json(v) = &e.plan else {
            panic!("json")
        };
        assert_eq!(v["Plan"]["Node Type"], "Result");
        assert_eq!(e.statement.as_deref(), Some("select \"a\"\nfrom t;"));
        // Cut: text, the query text still read.
        let cut = &JSON[..JSON.len() - 10];
        let e = parse(cut, true).unwrap();
        assert_eq!(e.plan, Plan::Text(cut[e.header + 1..].to_string()));
        assert_eq!(e.statement.as_deref(), Some("select \"a\"\nfrom t;"));
        // Whole but said cut: still text.
        assert_eq!(parse(JSON, true).unwrap().plan.format(), "text");
        // Cut inside the query text: no statement.
        let e = parse(&JSON[..50], true).unwrap();
        assert_eq!(e.statement, None);
    }

    #[test]
    fn not_plans() {
        assert_eq!(parse("duration: 0.020 ms  plan:", false), None);
        assert_eq!(parse("duration: 0.020 ms  plan:\n  \n", false), None);
        assert_eq!(
            parse("duration: 0.020 ms  statement: select 1", false),
            None
        );
        assert_eq!(parse("relation \"x\" does not exist", false), None);
    }

    #[test]
    fn every_prefix_is_handled() {
        for m in [TEXT, JSON] {
            for cut in 0..=m.len() {
                if !m.is_char_boundary(cut) {
                    continue;
                }
                let p = &m[..cut];
                if let Some(e) = parse(p, true) {
                    assert_eq!(e.plan, Plan::Text(p[e.header + 1..].to_string()));
                    if let Some(s) = &e.statement
                        && m == TEXT
                    {
                        assert!(p.contains(s.as_str()));
                    }
                }
            }
        }
    }
}
