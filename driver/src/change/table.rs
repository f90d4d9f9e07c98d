//! What the applier needs to know about a table to apply its rows.

use serde::{Deserialize, Serialize};

/// A target table as the rows that follow refer to it. The extractor numbers tables per stream
/// (`id`) and sends a definition before the first row that uses it, and again with a new id when
/// the table changes (DDL), as the binlog's table maps do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Stream-local id the rows refer to.
    pub id: u32,
    /// Target schema (after renames).
    pub schema: String,
    /// Target table (after renames).
    pub name: String,
    /// The columns of each row, in order (after column maps).
    pub columns: Vec<ColumnDef>,
    /// Indexes into `columns` of the key that identifies a row (the primary key, else a unique key
    /// on NOT NULL columns); empty when the table has none, and then rows are matched on every
    /// column.
    pub key: Vec<usize>,
}

impl TableDef {
    /// `schema.table`, as stats, progress records and messages name it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
}

/// One column of a [`TableDef`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Target column name.
    pub name: String,
    /// Whether values must be compared with `<=>` rather than `=` (the column is nullable).
    pub nullable: bool,
    /// Whether the column holds floating-point values, which cannot be matched exactly by `=`
    /// after a text round trip; such columns are left out of row matching when others suffice.
    pub float: bool,
}
