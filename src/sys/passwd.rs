//! `/etc/passwd`: user names and uids (the default user name, the home directory, and the
//! `requirepeer` check). The lookups are pure functions over the file's bytes; [`read`] is the
//! edge. Lines are `name:password:uid:gid:gecos:home:shell`; malformed lines are skipped.

/// One entry of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry<'a> {
    pub name: &'a str,
    pub uid: u32,
    pub home: &'a str,
}

/// The entries of a passwd file, malformed lines (and non-UTF-8 ones) skipped.
pub fn entries(passwd: &[u8]) -> impl Iterator<Item = PasswdEntry<'_>> {
    passwd
        .split(|&b| b == b'\n')
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let uid: u32 = f.next()?.parse().ok()?;
            let _gid = f.next()?;
            let _gecos = f.next()?;
            let home = f.next()?;
            (!name.is_empty()).then_some(PasswdEntry { name, uid, home })
        })
}

/// The first entry of `uid`.
pub fn by_uid(passwd: &[u8], uid: u32) -> Option<PasswdEntry<'_>> {
    entries(passwd).find(|e| e.uid == uid)
}

/// The uid of user `name` (its first entry).
pub fn uid_of(passwd: &[u8], name: &str) -> Option<u32> {
    entries(passwd).find(|e| e.name == name).map(|e| e.uid)
}

/// `/etc/passwd`'s content (empty when unreadable).
pub fn read() -> Vec<u8> {
    super::file::read(std::path::Path::new("/etc/passwd")).unwrap_or_default()
}

/// `uid` as people read it: `name (uid N)`, or `uid N` when `/etc/passwd` does not name it.
pub fn describe_uid(passwd: &[u8], uid: u32) -> String {
    match by_uid(passwd, uid) {
        Some(e) => format!("{} (uid {uid})", e.name),
        None => format!("uid {uid}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &[u8] = b"root:x:0:0:root:/root:/bin/bash\nbroken\n\xff:x:5:5::/:\npostgres:x:107:113:PG,,,:/var/lib/postgresql:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";

    #[test]
    fn lookups_by_uid_and_name() {
        assert_eq!(
            by_uid(P, 107),
            Some(PasswdEntry {
                name: "postgres",
                uid: 107,
                home: "/var/lib/postgresql"
            })
        );
        assert_eq!(by_uid(P, 0).map(|e| e.name), Some("root"));
        assert_eq!(by_uid(P, 5), None, "non-UTF-8 line skipped");
        assert_eq!(
            uid_of(P, "nobody"),
            Some(65534),
            "last line without newline"
        );
        assert_eq!(uid_of(P, "broken"), None);
        assert_eq!(uid_of(P, ""), None);
        assert_eq!(describe_uid(P, 65534), "nobody (uid 65534)");
        assert_eq!(describe_uid(P, 42), "uid 42");
    }

    #[test]
    fn every_prefix_finds_only_complete_fields() {
        for len in 0..P.len() {
            let p = &P[..len];
            for e in entries(p) {
                assert!(uid_of(P, e.name).is_some(), "prefix {len}: {e:?}");
            }
            assert!(entries(p).count() <= 3);
        }
    }
}
