//! `/proc/net/dev`: per-interface network counters (proc(5)).
//!
//! What this does: read each interface's name and its receive/transmit bytes, packets, errors
//! and drops into a fixed [`heapless::Vec`]. What it does not do: skip `lo` or compute rates
//! (the sysstat collector does), nor keep the fifo/frame/compressed/multicast/colls/carrier
//! counters.
//!
//! ```text
//! Inter-|   Receive                                                |  Transmit
//!  face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
//!   eth0: 120732000    5475    0    0    0     0          0         0   258600    2745    0    0    0     0       0          0
//! ```
//!
//! Quirks handled here:
//! - the two header lines are recognised by their '|' and skipped.
//! - the name is the text before the first ':' (Linux interface names cannot contain ':'),
//!   right-aligned in 6 columns; a long name is followed by the first number with no space.
//! - exactly 16 numbers follow the name; another count is an error naming the line.
//! - more than [`MAX_INTERFACES`] interfaces, or a name longer than [`IFNAME_CAP`] bytes, are
//!   counted in [`NetDev::skipped`], never dropped silently.

use core::fmt;

use super::{LineParser, fields, parse_u64, trim};

/// Most interfaces kept from one read.
pub const MAX_INTERFACES: usize = 256;
/// Longest interface name kept, in bytes (IFNAMSIZ; real names are at most 15).
pub const IFNAME_CAP: usize = 16;

/// Numbers after the name: 8 receive, 8 transmit.
const NUMBERS: usize = 16;

/// One interface of /proc/net/dev.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetDevStat {
    pub name: heapless::String<IFNAME_CAP>,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interfaces of one read of /proc/net/dev.
#[derive(Debug, Default)]
pub struct NetDev {
    pub interfaces: heapless::Vec<NetDevStat, MAX_INTERFACES>,
    /// Interfaces beyond [`MAX_INTERFACES`] or with a name longer than [`IFNAME_CAP`].
    pub skipped: u32,
    /// Lines fed so far, for error messages.
    line_no: u32,
}

/// Why /proc/net/dev could not be parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetDevError {
    /// A line that is neither a header nor `name: numbers`.
    NoColon { line: u32 },
    /// An empty or non-UTF-8 interface name.
    Name { line: u32 },
    /// Not 16 numbers after the name.
    Numbers { line: u32, found: usize },
    /// A field that is not a number or does not fit a u64.
    Number { line: u32 },
    /// A line longer than the read buffer.
    LongLine { line: u32 },
}

impl fmt::Display for NetDevError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetDevError::NoColon { line } => write!(f, "line {line}: expected 'name:'"),
            NetDevError::Name { line } => write!(f, "line {line}: bad interface name"),
            NetDevError::Numbers { line, found } => write!(
                f,
                "line {line}: expected {NUMBERS} numbers after the name, found {found}"
            ),
            NetDevError::Number { line } => write!(f, "line {line}: bad number"),
            NetDevError::LongLine { line } => {
                write!(f, "line {line}: longer than the read buffer")
            }
        }
    }
}

impl NetDev {
    /// Parses a whole /proc/net/dev.
    pub fn parse(input: &[u8]) -> Result<NetDev, NetDevError> {
        let mut n = NetDev::default();
        super::feed_all(&mut n, input)?;
        Ok(n)
    }

    /// Forgets everything, to parse the file again.
    pub fn clear(&mut self) {
        self.interfaces.clear();
        self.skipped = 0;
        self.line_no = 0;
    }
}

impl LineParser for NetDev {
    type Error = NetDevError;

    fn line(&mut self, line: &[u8]) -> Result<(), NetDevError> {
        self.line_no = self.line_no.saturating_add(1);
        let ln = self.line_no;
        if line.contains(&b'|') || trim(line).is_empty() {
            return Ok(());
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(NetDevError::NoColon { line: ln })?;
        let name = trim(line.get(..colon).unwrap_or(&[]));
        let name = core::str::from_utf8(name)
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or(NetDevError::Name { line: ln })?;
        let mut n = [0u64; NUMBERS];
        let mut found = 0usize;
        for field in fields(line.get(colon + 1..).unwrap_or(&[])) {
            if let Some(slot) = n.get_mut(found) {
                *slot = parse_u64(field).ok_or(NetDevError::Number { line: ln })?;
            }
            found += 1;
        }
        if found != NUMBERS {
            return Err(NetDevError::Numbers { line: ln, found });
        }
        let [
            rx_bytes,
            rx_packets,
            rx_errors,
            rx_dropped,
            _rx_fifo,
            _rx_frame,
            _rx_compressed,
            _rx_multicast,
            tx_bytes,
            tx_packets,
            tx_errors,
            tx_dropped,
            ..,
        ] = n;
        let mut stat = NetDevStat {
            name: heapless::String::new(),
            rx_bytes,
            rx_packets,
            rx_errors,
            rx_dropped,
            tx_bytes,
            tx_packets,
            tx_errors,
            tx_dropped,
        };
        if stat.name.push_str(name).is_err() || self.interfaces.push(stat).is_err() {
            self.skipped = self.skipped.saturating_add(1);
        }
        Ok(())
    }

    fn long_line(&mut self, _prefix: &[u8]) -> Result<(), NetDevError> {
        self.line_no = self.line_no.saturating_add(1);
        Err(NetDevError::LongLine { line: self.line_no })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &[u8] = include_bytes!("../../../fixtures/proc/vm-debian12/net/dev");
    const EDGE: &[u8] = include_bytes!("../../../fixtures/proc/synthetic/net-dev-long-names");

    #[test]
    fn real_capture() {
        let n = NetDev::parse(REAL).unwrap();
        assert_eq!(n.skipped, 0);
        let names: std::vec::Vec<&str> = n.interfaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names[0], "lo");
        assert!(names.contains(&"eth0"));
        let lo = &n.interfaces[0];
        assert_eq!((lo.rx_bytes, lo.rx_packets), (3193, 29));
        assert_eq!((lo.tx_bytes, lo.tx_packets), (3193, 29));
        let eth0 = n.interfaces.iter().find(|i| i.name == "eth0").unwrap();
        assert_eq!(eth0.rx_bytes, 120732000);
        assert_eq!(eth0.tx_packets, 2745);
        assert_eq!(eth0.rx_errors + eth0.tx_errors, 0);
    }

    #[test]
    fn long_names_and_big_counters() {
        let n = NetDev::parse(EDGE).unwrap();
        assert_eq!(n.skipped, 1, "the 17-byte name");
        let veth = n
            .interfaces
            .iter()
            .find(|i| i.name == "veth1234567890ab")
            .unwrap();
        assert_eq!(veth.rx_bytes, 18446744073709551615);
        assert_eq!(veth.rx_packets, 5);
        let br = n
            .interfaces
            .iter()
            .find(|i| i.name == "br-0123abcd")
            .unwrap();
        assert_eq!(
            *br,
            NetDevStat {
                name: heapless::String::try_from("br-0123abcd").unwrap(),
                rx_bytes: 1,
                rx_packets: 2,
                rx_errors: 3,
                rx_dropped: 4,
                tx_bytes: 9,
                tx_packets: 10,
                tx_errors: 11,
                tx_dropped: 12,
            }
        );
    }

    #[test]
    fn more_interfaces_than_capacity_are_counted() {
        let mut n = NetDev::default();
        for i in 0..MAX_INTERFACES + 2 {
            let line = format!("veth{i}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0");
            n.line(line.as_bytes()).unwrap();
        }
        assert_eq!(n.interfaces.len(), MAX_INTERFACES);
        assert_eq!(n.skipped, 2);
        n.clear();
        assert!(n.interfaces.is_empty());
        assert_eq!(n.skipped, 0);
    }

    #[test]
    fn errors() {
        assert_eq!(
            NetDev::parse(b"eth0 1 2 3\n").unwrap_err().to_string(),
            "line 1: expected 'name:'"
        );
        assert_eq!(
            NetDev::parse(b"  : 1 2\n").unwrap_err(),
            NetDevError::Name { line: 1 }
        );
        assert_eq!(
            NetDev::parse(b"e\xffh0: 1\n").unwrap_err(),
            NetDevError::Name { line: 1 }
        );
        assert_eq!(
            NetDev::parse(b"h|\nh|\neth0: 1 2 3\n")
                .unwrap_err()
                .to_string(),
            "line 3: expected 16 numbers after the name, found 3"
        );
        assert_eq!(
            NetDev::parse(b"eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n").unwrap_err(),
            NetDevError::Numbers { line: 1, found: 17 }
        );
        assert_eq!(
            NetDev::parse(b"eth0: 18446744073709551616 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n")
                .unwrap_err(),
            NetDevError::Number { line: 1 }
        );
        let mut long = b"eth0: ".to_vec();
        long.extend(std::iter::repeat_n(b'1', crate::sys::procfs::LINE_BUF));
        assert_eq!(
            NetDev::parse(&long).unwrap_err(),
            NetDevError::LongLine { line: 1 }
        );
    }

    #[test]
    fn every_prefix_is_ok_or_err() {
        for input in [REAL, EDGE] {
            for end in 0..=input.len() {
                let _ = NetDev::parse(&input[..end]);
            }
        }
    }
}
