//! The catch-up after a snapshot: which transactions each table's copy already holds.
//!
//! Tables of one job may have been copied at different source positions (an extractor that died
//! mid-snapshot leaves its finished tables, and a new snapshot copies the rest later). The binlog
//! then starts at the earliest of those positions, and a transaction is skipped for a table whose
//! copy already holds it. Once the binlog has passed every copy, the catch-up is over and the
//! snapshot's progress rows can go.

use crate::change::Gtid;
use jobs::GtidSet;
use std::collections::HashMap;

/// Per target table (`schema.table`), the transactions its copy holds. Empty outside a catch-up.
#[derive(Debug, Default)]
pub struct CatchUp {
    copies: HashMap<String, GtidSet>,
}

impl CatchUp {
    /// From the snapshot's progress rows: (target table, position its copy reflects).
    pub fn new(copies: impl IntoIterator<Item = (String, GtidSet)>) -> Self {
        Self {
            copies: copies.into_iter().collect(),
        }
    }

    /// Records that `target`'s copy now reflects `copied`, replacing what an earlier copy held.
    pub fn set(&mut self, target: String, copied: GtidSet) {
        self.copies.insert(target, copied);
    }

    /// Forgets `target`'s copy: it is being copied again.
    pub fn forget(&mut self, target: &str) {
        self.copies.remove(target);
    }

    /// Whether a catch-up is under way.
    pub fn is_active(&self) -> bool {
        !self.copies.is_empty()
    }

    /// Whether the copy of `target` already holds transaction `gtid`.
    pub fn holds(&self, gtid: Option<&Gtid>, target: &str) -> bool {
        match (gtid, self.copies.get(target)) {
            (Some(gtid), Some(copied)) => gtid.is_in(copied),
            _ => false,
        }
    }

    /// Whether everything up to `executed` has passed every table's copy.
    pub fn is_passed_by(&self, executed: &GtidSet) -> bool {
        self.copies
            .values()
            .all(|copied| &copied.meet(executed) == copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_skip_what_their_own_copy_holds_until_all_are_passed() {
        let set = |s: &str| GtidSet::parse(s).expect("gtid set");
        let catch_up = CatchUp::new([
            ("s.kept".to_owned(), set("0-1-50")),
            ("s.later".to_owned(), set("0-1-100")),
        ]);
        let gtid = |seq| {
            Gtid::MariaDb(jobs::MariaDbGtid {
                domain: 0,
                server: 1,
                seq,
            })
        };
        assert!(catch_up.is_active());
        assert!(!catch_up.holds(Some(&gtid(60)), "s.kept"));
        assert!(catch_up.holds(Some(&gtid(60)), "s.later"));
        assert!(!catch_up.holds(Some(&gtid(101)), "s.later"));
        assert!(!catch_up.holds(Some(&gtid(60)), "s.other"));
        assert!(!catch_up.is_passed_by(&set("0-1-99")));
        assert!(catch_up.is_passed_by(&set("0-1-100")));
        assert!(!CatchUp::default().is_active());
    }
}
