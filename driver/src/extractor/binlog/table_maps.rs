//! Which table a rows event means: the binlog's table maps, kept in bounded memory.
//!
//! A rows event names its table only by a numeric table id, defined by a TABLE_MAP event earlier
//! in the same statement. The server hands out a fresh id whenever it opens a table again (after
//! ALTER, TRUNCATE, FLUSH TABLES, an eviction from its table cache, a restart), so a map keyed by
//! id alone grows by one entry per reopen for as long as the stream runs.
//!
//! # Invariants
//! - At most one entry per source table: mapping `schema.table` to a new id forgets the old id, and
//!   an id reused for another table forgets that table's old name.
//! - The reader clears the maps at every transaction end, rotate and replicated schema change.
//!   This forgets nothing that is still needed: a table id is valid only until the end of its
//!   statement (replicas clear their own maps there too), and every statement writes the table
//!   maps its rows events use before them. So the maps hold at most the tables of one transaction.

use std::collections::HashMap;

/// A source table's name: schema and table.
type Name = (String, String);

/// Table maps by id, `T` being what the reader derives from one.
#[derive(Debug)]
pub struct TableMaps<T> {
    by_id: HashMap<u64, (Name, T)>,
    by_name: HashMap<Name, u64>,
}

impl<T> Default for TableMaps<T> {
    fn default() -> Self {
        Self {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T> TableMaps<T> {
    /// Records that `id` now means `schema.table`, described by `value`.
    pub fn insert(&mut self, id: u64, schema: &str, table: &str, value: T) {
        let name = (schema.to_owned(), table.to_owned());
        if let Some(old_id) = self.by_name.insert(name.clone(), id) {
            if old_id != id {
                self.by_id.remove(&old_id);
            }
        }
        if let Some((old_name, _)) = self.by_id.insert(id, (name.clone(), value)) {
            if old_name != name {
                self.by_name.remove(&old_name);
            }
        }
    }

    /// What `id` means, if a table map defined it since the last [`TableMaps::clear`].
    pub fn get(&self, id: u64) -> Option<&T> {
        self.by_id.get(&id).map(|(_, value)| value)
    }

    /// Forgets every table map.
    pub fn clear(&mut self) {
        self.by_id.clear();
        self.by_name.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_a_table_replaces_its_entry() {
        let mut maps = TableMaps::default();
        // A long stream: the same two tables reopened again and again, each time with a new id.
        for round in 0..10_000u64 {
            maps.insert(2 * round, "s", "a", round);
            maps.insert(2 * round + 1, "s", "b", round);
            assert_eq!(maps.by_id.len(), 2);
        }
        assert_eq!(maps.get(19_998), Some(&9_999));
        assert_eq!(maps.get(19_999), Some(&9_999));
        assert_eq!(maps.get(0), None, "an old id of `s.a` is forgotten");
        assert_eq!(maps.by_name.len(), 2);
    }

    #[test]
    fn an_id_reused_for_another_table_forgets_the_old_name() {
        let mut maps = TableMaps::default();
        maps.insert(7, "s", "a", 'a');
        // After a restart, id 7 means another table.
        maps.insert(7, "s", "b", 'b');
        assert_eq!(maps.get(7), Some(&'b'));
        assert_eq!(maps.by_id.len(), 1);
        assert_eq!(maps.by_name.len(), 1);
        // `s.a` comes back under a new id; `s.b` keeps its own.
        maps.insert(8, "s", "a", 'A');
        assert_eq!((maps.get(7), maps.get(8)), (Some(&'b'), Some(&'A')));
        // The same id again for the same table just refreshes it.
        maps.insert(8, "s", "a", 'Z');
        assert_eq!(maps.get(8), Some(&'Z'));
        assert_eq!((maps.by_id.len(), maps.by_name.len()), (2, 2));
    }

    #[test]
    fn clear_forgets_everything() {
        let mut maps = TableMaps::default();
        maps.insert(1, "s", "a", ());
        maps.insert(2, "t", "a", ());
        assert_eq!(maps.by_id.len(), 2);
        maps.clear();
        assert!(maps.by_id.is_empty());
        assert_eq!(maps.get(1), None);
        assert!(maps.by_name.is_empty());
    }
}
