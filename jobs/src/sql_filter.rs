//! dtle's `SqlFilter`: kinds of statements a job does not replicate.
//!
//! The words are dtle's own (matched without regard to case, as dtle did); an unknown word is an
//! error, because a filter that silently matched nothing would replicate what the user meant to skip.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

macro_rules! words {
    ($($(#[$doc:meta])* $word:ident),* $(,)?) => {
        /// One `SqlFilter` word.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum SqlFilterWord {
            $($(#[$doc])* $word,)*
        }

        impl SqlFilterWord {
            /// Every word, in dtle's order.
            pub const ALL: &'static [SqlFilterWord] = &[$(SqlFilterWord::$word,)*];

            /// dtle's spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(SqlFilterWord::$word => stringify!($word),)*
                }
            }
        }
    };
}

words! {
    /// No data changes at all.
    NoDML,
    /// No INSERTs.
    NoDMLInsert,
    /// No DELETEs.
    NoDMLDelete,
    /// No UPDATEs.
    NoDMLUpdate,
    /// No schema changes at all.
    NoDDL,
    /// No CREATE DATABASE.
    NoDDLCreateSchema,
    /// No CREATE TABLE.
    NoDDLCreateTable,
    /// No DROP DATABASE.
    NoDDLDropSchema,
    /// No DROP TABLE.
    NoDDLDropTable,
    /// No DROP INDEX.
    NoDDLDropIndex,
    /// No ALTER TABLE.
    NoDDLAlterTable,
    /// No TRUNCATE TABLE.
    NoDDLTruncate,
    /// No ALTER TABLE ... ADD COLUMN.
    NoDDLAlterTableAddColumn,
    /// No ALTER TABLE ... DROP COLUMN.
    NoDDLAlterTableDropColumn,
    /// No ALTER TABLE ... MODIFY COLUMN.
    NoDDLAlterTableModifyColumn,
    /// No ALTER TABLE ... CHANGE COLUMN.
    NoDDLAlterTableChangeColumn,
    /// No ALTER TABLE ... ALTER COLUMN.
    NoDDLAlterTableAlterColumn,
}

impl fmt::Display for SqlFilterWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown `SqlFilter` word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown SqlFilter word {0:?}; known words: {known}", known = known_words())]
pub struct UnknownSqlFilterWord(pub String);

fn known_words() -> String {
    SqlFilterWord::ALL
        .iter()
        .map(|w| w.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for SqlFilterWord {
    type Err = UnknownSqlFilterWord;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SqlFilterWord::ALL
            .iter()
            .copied()
            .find(|w| w.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownSqlFilterWord(s.to_owned()))
    }
}

/// The set of `SqlFilter` words a job gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SqlFilter(pub BTreeSet<SqlFilterWord>);

impl SqlFilter {
    /// Whether `word` was given.
    pub fn has(&self, word: SqlFilterWord) -> bool {
        self.0.contains(&word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_in_any_case_and_unknown_ones_list_the_known() {
        assert_eq!(
            "noddlaltertableaddcolumn".parse(),
            Ok(SqlFilterWord::NoDDLAlterTableAddColumn)
        );
        assert_eq!("NoDML".parse(), Ok(SqlFilterWord::NoDML));
        let err = "NoDMLUpsert".parse::<SqlFilterWord>().unwrap_err();
        assert!(err.to_string().starts_with(
            "unknown SqlFilter word \"NoDMLUpsert\"; known words: NoDML, NoDMLInsert"
        ));
        assert_eq!(SqlFilterWord::ALL.len(), 17);
    }
}
