//! GTID sets of both server families: parse, display, membership and growth.
//!
//! - MySQL: `3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7,<uuid>:1-3`, a set of transaction numbers
//!   per server UUID. Held as sorted, disjoint, non-adjacent inclusive intervals, so two sets that
//!   hold the same transactions are equal and display the same way.
//! - MariaDB: `0-1-10,1-2-5`, `domain-server-sequence`, at most one entry per replication domain
//!   (the form of `@@gtid_binlog_pos` and `@slave_connect_state`). Within a domain sequence numbers
//!   only grow (gtid_strict_mode), so the last GTID of a domain stands for every earlier one.
//!
//! The job's `Gtid`/`GtidStart` fields are checked with [`GtidSet::parse`]; the driver uses the same
//! type for the positions it stores and resumes from. `parse(display(x)) == x` for every set.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Why a GTID set could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GtidParseError {
    /// The text is empty.
    #[error("empty GTID set")]
    Empty,
    /// A MySQL entry's server UUID is malformed.
    #[error("bad server UUID {0:?}: expected 32 hex digits as 8-4-4-4-12")]
    BadUuid(String),
    /// A MySQL interval is malformed.
    #[error("bad transaction interval {0:?}: expected N or N-M with 1 <= N <= M")]
    BadInterval(String),
    /// A MariaDB GTID is malformed.
    #[error("bad MariaDB GTID {0:?}: expected domain-server-sequence, e.g. 0-1-42")]
    BadMariaDbGtid(String),
    /// Two MariaDB GTIDs for one domain.
    #[error("two GTIDs for replication domain {0}: give one per domain")]
    DuplicateDomain(u32),
    /// MySQL and MariaDB forms mixed.
    #[error("mixes MySQL (uuid:N) and MariaDB (domain-server-seq) GTIDs")]
    Mixed,
}

/// A 16-byte server UUID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ServerUuid(pub [u8; 16]);

impl FromStr for ServerUuid {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GtidParseError::BadUuid(s.to_owned());
        let hex: String = match s.len() {
            36 => {
                let dashes = [8, 13, 18, 23];
                if s.char_indices()
                    .any(|(i, c)| (c == '-') != dashes.contains(&i))
                {
                    return Err(bad());
                }
                s.chars().filter(|&c| c != '-').collect()
            }
            32 => s.to_owned(),
            _ => return Err(bad()),
        };
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for ServerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ServerUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One MariaDB GTID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MariaDbGtid {
    /// Replication domain.
    pub domain: u32,
    /// Server id of the server that wrote the transaction.
    pub server: u32,
    /// Sequence number within the domain.
    pub seq: u64,
}

impl FromStr for MariaDbGtid {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || GtidParseError::BadMariaDbGtid(s.to_owned());
        let mut parts = s.trim().split('-');
        let (Some(d), Some(srv), Some(seq), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !(digits(d) && digits(srv) && digits(seq)) {
            return Err(bad());
        }
        Ok(Self {
            domain: d.parse().map_err(|_| bad())?,
            server: srv.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for MariaDbGtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.domain, self.server, self.seq)
    }
}

/// A set of executed transactions, in MySQL's or MariaDB's form.
#[derive(Clone, PartialEq, Eq)]
pub enum GtidSet {
    /// Per server UUID, sorted disjoint non-adjacent inclusive intervals of transaction numbers.
    MySql(BTreeMap<ServerUuid, Vec<(u64, u64)>>),
    /// Per replication domain, the last GTID executed in it.
    MariaDb(BTreeMap<u32, MariaDbGtid>),
}

impl GtidSet {
    /// Parses either form; whitespace and newlines between entries are ignored (MySQL prints
    /// `gtid_executed` with newlines).
    ///
    /// # Errors
    /// What is wrong with which entry.
    pub fn parse(text: &str) -> Result<Self, GtidParseError> {
        let entries: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        if entries.is_empty() {
            return Err(GtidParseError::Empty);
        }
        let mysql = entries.iter().filter(|e| e.contains(':')).count();
        if mysql == entries.len() {
            let mut set = GtidSet::MySql(BTreeMap::new());
            for entry in entries {
                let mut parts = entry.split(':');
                let uuid: ServerUuid = parts.next().unwrap_or_default().trim().parse()?;
                for interval in parts {
                    let (start, end) = parse_interval(interval.trim())?;
                    set.add_mysql_interval(uuid, start, end);
                }
            }
            Ok(set)
        } else if mysql == 0 {
            let mut domains = BTreeMap::new();
            for entry in entries {
                let gtid: MariaDbGtid = entry.parse()?;
                if domains.insert(gtid.domain, gtid).is_some() {
                    return Err(GtidParseError::DuplicateDomain(gtid.domain));
                }
            }
            Ok(GtidSet::MariaDb(domains))
        } else {
            Err(GtidParseError::Mixed)
        }
    }

    /// Adds MySQL transactions `start..=end` of `uuid`. No effect on a MariaDB set.
    pub fn add_mysql_interval(&mut self, uuid: ServerUuid, start: u64, end: u64) {
        let GtidSet::MySql(map) = self else { return };
        let intervals = map.entry(uuid).or_default();
        intervals.push((start, end));
        intervals.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(intervals.len());
        for &(s, e) in intervals.iter() {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        *intervals = merged;
    }

    /// Records a MariaDB GTID as executed: it becomes its domain's last one. No effect on a MySQL set.
    pub fn add_mariadb(&mut self, gtid: MariaDbGtid) {
        if let GtidSet::MariaDb(map) = self {
            map.insert(gtid.domain, gtid);
        }
    }

    /// The transactions both sets hold (for MariaDB: per domain, the lower position; a domain
    /// missing from either is dropped). Reading the binlog from the meet of several positions
    /// covers everything after each of them. Sets of different families meet in an empty set.
    pub fn meet(&self, other: &GtidSet) -> GtidSet {
        match (self, other) {
            (GtidSet::MariaDb(a), GtidSet::MariaDb(b)) => GtidSet::MariaDb(
                a.iter()
                    .filter_map(|(domain, x)| {
                        let y = b.get(domain)?;
                        Some((*domain, if x.seq <= y.seq { *x } else { *y }))
                    })
                    .collect(),
            ),
            (GtidSet::MySql(a), GtidSet::MySql(b)) => {
                let mut out = GtidSet::MySql(BTreeMap::new());
                for (uuid, xs) in a {
                    let Some(ys) = b.get(uuid) else { continue };
                    for &(s1, e1) in xs {
                        for &(s2, e2) in ys {
                            let (s, e) = (s1.max(s2), e1.min(e2));
                            if s <= e {
                                out.add_mysql_interval(*uuid, s, e);
                            }
                        }
                    }
                }
                out
            }
            (GtidSet::MariaDb(_), _) => GtidSet::MariaDb(BTreeMap::new()),
            (GtidSet::MySql(_), _) => GtidSet::MySql(BTreeMap::new()),
        }
    }

    /// Whether MySQL transaction `gno` of `uuid` is in the set.
    pub fn contains_mysql(&self, uuid: &ServerUuid, gno: u64) -> bool {
        match self {
            GtidSet::MySql(map) => map
                .get(uuid)
                .is_some_and(|iv| iv.iter().any(|&(s, e)| s <= gno && gno <= e)),
            GtidSet::MariaDb(_) => false,
        }
    }

    /// Whether a MariaDB GTID is already executed: its domain has reached its sequence number.
    pub fn contains_mariadb(&self, gtid: &MariaDbGtid) -> bool {
        match self {
            GtidSet::MariaDb(map) => map.get(&gtid.domain).is_some_and(|g| g.seq >= gtid.seq),
            GtidSet::MySql(_) => false,
        }
    }
}

fn parse_interval(text: &str) -> Result<(u64, u64), GtidParseError> {
    let bad = || GtidParseError::BadInterval(text.to_owned());
    let number = |p: &str| -> Result<u64, GtidParseError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (start, end) = match text.split_once('-') {
        Some((s, e)) => (number(s)?, number(e)?),
        None => {
            let n = number(text)?;
            (n, n)
        }
    };
    if start == 0 || start > end {
        return Err(bad());
    }
    Ok((start, end))
}

impl fmt::Display for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GtidSet::MySql(map) => {
                for (i, (uuid, intervals)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{uuid}")?;
                    for &(s, e) in intervals {
                        if s == e {
                            write!(f, ":{s}")?;
                        } else {
                            write!(f, ":{s}-{e}")?;
                        }
                    }
                }
                Ok(())
            }
            GtidSet::MariaDb(map) => {
                for (i, gtid) in map.values().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{gtid}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for GtidSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GtidSet({self})")
    }
}

impl FromStr for GtidSet {
    type Err = GtidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for GtidSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GtidSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mysql_sets_are_normalised() {
        let set = GtidSet::parse(
            "3E11FA47-71CA-11E1-9E33-C80AA9429562:7:1-5:6,\n 41f102d4-d29f-11e8-8de7-0242ac130002:3",
        )
        .unwrap();
        assert_eq!(
            set.to_string(),
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7,41f102d4-d29f-11e8-8de7-0242ac130002:3"
        );
        let uuid: ServerUuid = "3e11fa47-71ca-11e1-9e33-c80aa9429562".parse().unwrap();
        assert!(set.contains_mysql(&uuid, 6));
        assert!(!set.contains_mysql(&uuid, 8));
    }

    #[test]
    fn mariadb_lists_keep_one_gtid_per_domain() {
        let mut set = GtidSet::parse("1-2-5, 0-1-10").unwrap();
        assert_eq!(set.to_string(), "0-1-10,1-2-5");
        assert!(set.contains_mariadb(&"0-1-9".parse().unwrap()));
        assert!(!set.contains_mariadb(&"0-1-11".parse().unwrap()));
        set.add_mariadb("0-1-11".parse().unwrap());
        assert_eq!(set.to_string(), "0-1-11,1-2-5");
        assert_eq!(
            GtidSet::parse("0-1-1,0-2-3"),
            Err(GtidParseError::DuplicateDomain(0))
        );
    }

    #[test]
    fn malformed_sets_say_which_entry_is_wrong() {
        let cases = [
            ("", GtidParseError::Empty),
            ("abc:1", GtidParseError::BadUuid("abc".into())),
            (
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:5-3",
                GtidParseError::BadInterval("5-3".into()),
            ),
            (
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:0",
                GtidParseError::BadInterval("0".into()),
            ),
            ("0-1", GtidParseError::BadMariaDbGtid("0-1".into())),
            ("0-1-x", GtidParseError::BadMariaDbGtid("0-1-x".into())),
            (
                "0-1-2,3e11fa47-71ca-11e1-9e33-c80aa9429562:1",
                GtidParseError::Mixed,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(GtidSet::parse(text), Err(expected), "{text:?}");
        }
    }

    fn mysql_set() -> impl Strategy<Value = GtidSet> {
        prop::collection::vec(
            (
                any::<[u8; 16]>(),
                prop::collection::vec((1u64..1000, 0u64..50), 1..5),
            ),
            1..4,
        )
        .prop_map(|entries| {
            let mut set = GtidSet::MySql(BTreeMap::new());
            for (uuid, intervals) in entries {
                for (start, len) in intervals {
                    set.add_mysql_interval(ServerUuid(uuid), start, start + len);
                }
            }
            set
        })
    }

    fn mariadb_set() -> impl Strategy<Value = GtidSet> {
        prop::collection::btree_map(any::<u32>(), (any::<u32>(), any::<u64>()), 1..5).prop_map(
            |m| {
                GtidSet::MariaDb(
                    m.into_iter()
                        .map(|(domain, (server, seq))| {
                            (
                                domain,
                                MariaDbGtid {
                                    domain,
                                    server,
                                    seq,
                                },
                            )
                        })
                        .collect(),
                )
            },
        )
    }

    #[test]
    fn meets_keep_what_both_hold() {
        let a = GtidSet::parse("0-1-10,1-1-5").unwrap();
        let b = GtidSet::parse("0-2-7,2-1-3").unwrap();
        assert_eq!(a.meet(&b).to_string(), "0-2-7");
        let u = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
        let x = GtidSet::parse(&format!("{u}:1-10:20-30")).unwrap();
        let y = GtidSet::parse(&format!("{u}:5-25")).unwrap();
        assert_eq!(x.meet(&y).to_string(), format!("{u}:5-10:20-25"));
    }

    proptest! {
        #[test]
        fn a_meet_is_held_by_both(a in mysql_set(), b in mysql_set()) {
            let m = a.meet(&b);
            if let GtidSet::MySql(map) = &m {
                for (uuid, intervals) in map {
                    for &(s, e) in intervals {
                        for gno in [s, e] {
                            prop_assert!(a.contains_mysql(uuid, gno) && b.contains_mysql(uuid, gno));
                        }
                    }
                }
            }
        }

        #[test]
        fn display_then_parse_is_identity(set in prop_oneof![mysql_set(), mariadb_set()]) {
            prop_assert_eq!(GtidSet::parse(&set.to_string()).unwrap(), set);
        }

        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = GtidSet::parse(&text);
        }
    }
}
