//! The house plan of docs/ARCHITECTURE.md, held by a test: the modules of `src/` import each
//! other without circles, and the floors point down (the system layer, the protocols, the log
//! format parser and the pipeline never reach up into the rooms that use them).
//!
//! Reads the sources as text: every `crate::a::b` and `super::a` path outside comments and
//! test modules is an arrow from its file's module to the longest module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`push::sink`, `sys`) → source text without comments and test modules.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    let mut out = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if matches!(
            parts.last().map(String::as_str),
            Some("mod" | "lib" | "main")
        ) {
            parts.pop();
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let mut code = String::new();
        let mut lines = text.lines().peekable();
        while let Some(line) = lines.next() {
            let t = line.trim_start();
            // A test module: to the end of the file (they come last, by the house style).
            if t.starts_with("#[cfg(test)]")
                && lines
                    .peek()
                    .is_some_and(|n| n.trim_start().starts_with("mod "))
            {
                break;
            }
            let line = match line.find("//") {
                Some(i) => &line[..i],
                None => line,
            };
            code.push_str(line);
            code.push('\n');
        }
        out.insert(parts.join("::"), code);
    }
    out
}

/// `a::b::c` paths that follow `prefix` in `code`.
fn paths<'c>(code: &'c str, prefix: &str) -> Vec<&'c str> {
    code.match_indices(prefix)
        .filter(|(i, _)| {
            *i == 0 || {
                let b = code.as_bytes()[i - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            }
        })
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            rest[..end].trim_end_matches(':')
        })
        .collect()
}

/// Arrows between modules (a parent and its children are one room: not counted).
fn arrows() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| mods.contains_key(m))
    };
    let related = |a: &str, b: &str| {
        a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::"))
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, code) in &mods {
        let parent = m.rsplit_once("::").map_or("", |(p, _)| p);
        let mut targets: Vec<String> = paths(code, "crate::")
            .into_iter()
            .filter_map(resolve)
            .collect();
        for p in paths(code, "super::") {
            let full = if parent.is_empty() {
                p.to_string()
            } else {
                format!("{parent}::{p}")
            };
            targets.extend(resolve(&full));
        }
        for t in targets {
            if !related(m, &t) {
                out.entry(m.clone()).or_default().insert(t);
            }
        }
    }
    out
}

#[test]
fn the_modules_import_each_other_without_circles() {
    let arrows = arrows();
    // Every module from which `start` is reached again, by depth-first search.
    let mut circles = Vec::new();
    for start in arrows.keys() {
        let mut stack: Vec<(String, Vec<String>)> = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((m, trail)) = stack.pop() {
            for t in arrows.get(&m).into_iter().flatten() {
                if t == start {
                    circles.push(format!("{} -> {start}", trail.join(" -> ")));
                } else if seen.insert(t.clone()) {
                    let mut next = trail.clone();
                    next.push(t.clone());
                    stack.push((t.clone(), next));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
    assert!(
        arrows.len() > 50,
        "the source walk found {} modules",
        arrows.len()
    );
}

#[test]
fn the_floors_point_down() {
    // The floor → the rooms above it, which it must never name.
    let rules: [(&str, &[&str]); 5] = [
        (
            "sys",
            &[
                "app",
                "collect",
                "config",
                "pipeline",
                "push",
                "proto",
                "pg_log_format",
                "state",
            ],
        ),
        ("proto", &["app", "collect", "pipeline", "push"]),
        ("pg_log_format", &["app", "collect", "pipeline", "push"]),
        ("pipeline", &["app", "collect", "config", "push"]),
        (
            "tz",
            &["app", "collect", "pipeline", "push", "pg_log_format"],
        ),
    ];
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut wrong = Vec::new();
    for (m, targets) in arrows() {
        for (floor, above) in rules {
            if top(&m) == floor {
                for t in &targets {
                    if above.contains(&top(t).as_str()) {
                        wrong.push(format!("{m} -> {t}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "arrows up a floor:\n{}", wrong.join("\n"));
}
