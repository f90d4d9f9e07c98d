//! Applying the job's `SqlFilter` to row changes and schema changes, in both phases alike.

use super::ddl::DdlKind;
use crate::change::RowKind;
use jobs::{SqlFilter, SqlFilterWord as W};

/// Whether `filter` drops this row change.
pub fn skips_row(filter: &SqlFilter, kind: &RowKind) -> bool {
    if filter.0.is_empty() {
        return false;
    }
    filter.has(W::NoDML)
        || match kind {
            RowKind::Insert(_) => filter.has(W::NoDMLInsert),
            RowKind::Update { .. } => filter.has(W::NoDMLUpdate),
            RowKind::Delete(_) => filter.has(W::NoDMLDelete),
        }
}

/// Whether `filter` drops this schema change (`statement` decides the ALTER TABLE sub-kinds).
pub fn skips_ddl(filter: &SqlFilter, kind: DdlKind, statement: &str) -> bool {
    if filter.0.is_empty() {
        return false;
    }
    if filter.has(W::NoDDL) {
        return true;
    }
    match kind {
        DdlKind::CreateDatabase => filter.has(W::NoDDLCreateSchema),
        DdlKind::DropDatabase => filter.has(W::NoDDLDropSchema),
        DdlKind::AlterDatabase => false,
        DdlKind::CreateTable => filter.has(W::NoDDLCreateTable),
        DdlKind::DropTable => filter.has(W::NoDDLDropTable),
        DdlKind::TruncateTable => filter.has(W::NoDDLTruncate),
        DdlKind::DropIndex => filter.has(W::NoDDLDropIndex),
        DdlKind::CreateIndex | DdlKind::RenameTable => filter.has(W::NoDDLAlterTable),
        DdlKind::AlterTable => {
            if filter.has(W::NoDDLAlterTable) {
                return true;
            }
            let upper = statement.to_ascii_uppercase();
            let words: Vec<&str> = upper
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .filter(|w| !w.is_empty())
                .collect();
            let has = |a: &str, b: &str| words.windows(2).any(|w| w[0] == a && w[1] == b);
            (filter.has(W::NoDDLAlterTableAddColumn) && (has("ADD", "COLUMN")))
                || (filter.has(W::NoDDLAlterTableDropColumn) && has("DROP", "COLUMN"))
                || (filter.has(W::NoDDLAlterTableModifyColumn) && words.contains(&"MODIFY"))
                || (filter.has(W::NoDDLAlterTableChangeColumn) && words.contains(&"CHANGE"))
                || (filter.has(W::NoDDLAlterTableAlterColumn) && has("ALTER", "COLUMN"))
        }
    }
}
