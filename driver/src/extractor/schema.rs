//! What the extractor knows of a source table: its columns, their kinds, and the key that
//! identifies a row.
//!
//! Two sources, for the two phases:
//! - the snapshot reads `information_schema` at the snapshot's start;
//! - the binlog phase reads each row event's table map, which with `binlog_row_metadata=FULL`
//!   carries names, signedness, character sets and the primary key as of that very event. So the
//!   binlog never needs the server's *current* schema, which may already be ahead of the event
//!   being decoded (a later ALTER TABLE), and DDL needs no schema bookkeeping to decode rows right.

use crate::change::{ColumnDef, TableDef};
use crate::error::{classify_mysql, DefiniteCause, TaskError};
use crate::extractor::routing::Route;
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;

/// Collation id of the `binary` character set.
const BINARY_COLLATION: u16 = 63;

/// A source table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    /// Source schema.
    pub schema: String,
    /// Source table.
    pub name: String,
    /// Columns in table order.
    pub columns: Vec<ColumnSchema>,
    /// Indexes of the primary key's columns, else of a unique key on NOT NULL columns; empty
    /// when there is neither.
    pub key: Vec<usize>,
}

/// A source column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Name.
    pub name: String,
    /// How its values are represented.
    pub kind: ColumnKind,
    /// UNSIGNED (integers).
    pub unsigned: bool,
    /// NULL allowed.
    pub nullable: bool,
    /// Character set and collation of a text column (snapshot only): keyset pagination compares
    /// key values in the column's own collation.
    pub collation: Option<(String, String)>,
}

/// The representation of a column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// An integer of this many bits.
    Int(u8),
    /// FLOAT.
    Float,
    /// DOUBLE.
    Double,
    /// DECIMAL.
    Decimal,
    /// BIT(n).
    Bit,
    /// YEAR.
    Year,
    /// DATE.
    Date,
    /// TIME with this many fractional digits (0-6): mysql_common mis-decodes negative binlog
    /// values of TIME(1) and TIME(2) that have a fraction, which the decoder repairs knowing it.
    Time(u8),
    /// DATETIME.
    DateTime,
    /// TIMESTAMP.
    Timestamp,
    /// ENUM (by index).
    Enum,
    /// SET (by bitmask).
    Set,
    /// A fixed-length binary string of this many bytes (BINARY(n), UUID, INET6, INET4): the binlog
    /// strips trailing zero bytes, which must be put back.
    FixedBinary(usize),
    /// Any other string or byte string: CHAR, VARCHAR, TEXT, BLOB, JSON, GEOMETRY.
    Bytes,
}

impl TableSchema {
    /// `schema.table`, as progress records name it.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// Indexes of the source columns a route copies, in target order.
    pub fn copied_columns(&self, route: &Route) -> Vec<usize> {
        match &route.column_map {
            None => (0..self.columns.len()).collect(),
            Some(map) => map
                .from
                .iter()
                .filter_map(|from| self.columns.iter().position(|c| &c.name == from))
                .collect(),
        }
    }

    /// The applier's view of this table under `route`, as stream table `id`.
    pub fn table_def(&self, id: u32, route: &Route) -> TableDef {
        let copied = self.copied_columns(route);
        let columns = copied
            .iter()
            .enumerate()
            .map(|(i, &source)| {
                let column = &self.columns[source];
                ColumnDef {
                    name: match &route.column_map {
                        Some(map) => map
                            .to
                            .get(i)
                            .cloned()
                            .unwrap_or_else(|| column.name.clone()),
                        None => column.name.clone(),
                    },
                    nullable: column.nullable,
                    float: matches!(column.kind, ColumnKind::Float | ColumnKind::Double),
                }
            })
            .collect();
        // The key survives a column map only if every key column is copied.
        let key: Option<Vec<usize>> = self
            .key
            .iter()
            .map(|k| copied.iter().position(|c| c == k))
            .collect();
        TableDef {
            id,
            schema: route.schema.clone(),
            name: route.table.clone(),
            columns,
            key: key.unwrap_or_default(),
        }
    }

    /// Reads a table's columns and key from `information_schema`.
    ///
    /// # Errors
    /// Classified MySQL errors; a table that does not exist is definite.
    pub async fn load(
        conn: &mut mysql_async::Conn,
        schema: &str,
        table: &str,
    ) -> Result<Self, TaskError> {
        let context = format!("reading the definition of {schema}.{table}");
        type ColumnRow = (
            String,
            String,
            String,
            String,
            Option<u64>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<ColumnRow> = conn
            .exec(
                "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_OCTET_LENGTH, \
                 CHARACTER_SET_NAME, COLLATION_NAME FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
                (schema, table),
            )
            .await
            .map_err(|e| classify_mysql(&context, &e))?;
        if rows.is_empty() {
            return Err(TaskError::definite(
                context,
                DefiniteCause::MissingTable("the table does not exist".into()),
            ));
        }
        // Refused before the copy, rather than at the first change in the binlog.
        if let Some((name, ..)) = rows
            .iter()
            .find(|(_, _, column_type, ..)| column_type.to_ascii_uppercase().contains("COMPRESSED"))
        {
            return Err(TaskError::definite(context, compressed(name)));
        }
        let columns: Vec<ColumnSchema> = rows
            .into_iter()
            .map(
                |(name, data_type, column_type, nullable, octets, charset, collation)| {
                    let column_type = column_type.to_ascii_lowercase();
                    ColumnSchema {
                        collation: charset.clone().zip(collation),
                        kind: kind_from_information_schema(
                            &data_type.to_ascii_lowercase(),
                            &column_type,
                            octets,
                            charset.as_deref(),
                        ),
                        unsigned: column_type.contains("unsigned"),
                        nullable: nullable.eq_ignore_ascii_case("YES"),
                        name,
                    }
                },
            )
            .collect();
        let index_rows: Vec<(String, i64, String)> = conn
            .exec(
                "SELECT INDEX_NAME, NON_UNIQUE, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                (schema, table),
            )
            .await
            .map_err(|e| classify_mysql(&context, &e))?;
        let key = choose_key(&columns, &index_rows);
        Ok(Self {
            schema: schema.to_owned(),
            name: table.to_owned(),
            columns,
            key,
        })
    }

    /// Builds a table's schema from a binlog table map (which must carry FULL metadata).
    ///
    /// # Errors
    /// A definite error when the table map lacks column names (`binlog_row_metadata` is not FULL).
    pub fn from_table_map(tme: &TableMapEvent<'_>) -> Result<Self, TaskError> {
        let count = tme.columns_count() as usize;
        let mut names = Vec::new();
        let mut unsigned = vec![false; count];
        let mut charsets: Vec<Option<u16>> = vec![None; count];
        let mut key = Vec::new();
        let types: Vec<Option<ColumnType>> = (0..count)
            .map(|i| tme.get_column_type(i).ok().flatten())
            .collect();
        let character: Vec<usize> = (0..count)
            .filter(|&i| types[i].is_some_and(|t| t.is_character_type()))
            .collect();
        let numeric: Vec<usize> = (0..count)
            .filter(|&i| types[i].is_some_and(|t| t.is_numeric_type()))
            .collect();
        for field in tme.iter_optional_meta() {
            let Ok(field) = field else { continue };
            match field {
                OptionalMetadataField::ColumnName(cols) => {
                    names = cols
                        .iter_names()
                        .filter_map(Result::ok)
                        .map(|n| n.name().into_owned())
                        .collect();
                }
                OptionalMetadataField::Signedness(bits) => {
                    for (n, &column) in numeric.iter().enumerate() {
                        unsigned[column] = bits.get(n).is_some_and(|b| *b);
                    }
                }
                OptionalMetadataField::DefaultCharset(dc) => {
                    for &column in &character {
                        charsets[column] = Some(dc.default_charset());
                    }
                    for nd in dc.iter_non_default().filter_map(Result::ok) {
                        if let Some(&column) = character.get(nd.column_index() as usize) {
                            charsets[column] = Some(nd.charset());
                        }
                    }
                }
                OptionalMetadataField::ColumnCharset(cc) => {
                    for (&column, charset) in character.iter().zip(cc.iter_charsets()) {
                        charsets[column] = charset.ok();
                    }
                }
                OptionalMetadataField::SimplePrimaryKey(pk) => {
                    key = pk
                        .iter_indexes()
                        .filter_map(Result::ok)
                        .map(|i| i as usize)
                        .collect();
                }
                OptionalMetadataField::PrimaryKeyWithPrefix(pk) => {
                    key = pk
                        .iter_keys()
                        .filter_map(Result::ok)
                        .map(|k| k.column_index() as usize)
                        .collect();
                }
                _ => {}
            }
        }
        let table = format!("{}.{}", tme.database_name(), tme.table_name());
        if let Some(i) = (0..count).find(|&i| tme.get_raw_column_type(i).is_err()) {
            let name = names.get(i).map_or("?", String::as_str);
            return Err(TaskError::definite(
                format!("decoding {table}"),
                compressed(name),
            ));
        }
        if names.len() != count {
            return Err(TaskError::definite(
                format!("the binlog's table map of {table} has no column names"),
                DefiniteCause::InvalidSystemSetting {
                    setting: "binlog_row_metadata".into(),
                    expected: "FULL".into(),
                    actual: "another value when this row was written".into(),
                },
            ));
        }
        let nullable = tme.null_bitmask();
        let columns = (0..count)
            .map(|i| ColumnSchema {
                name: names[i].clone(),
                kind: kind_from_table_map(types[i], tme.get_column_metadata(i), charsets[i]),
                unsigned: unsigned[i],
                nullable: nullable.get(i).is_some_and(|b| *b),
                collation: None,
            })
            .collect();
        Ok(Self {
            schema: tme.database_name().into_owned(),
            name: tme.table_name().into_owned(),
            columns,
            key: key.into_iter().filter(|&k| k < count).collect(),
        })
    }
}

/// A COMPRESSED column (binlog types 140 and 141): mysql_common cannot decode its rows.
fn compressed(column: &str) -> DefiniteCause {
    DefiniteCause::UnsupportedColumn(format!(
        "column {column} is COMPRESSED (or of another type the binlog reader does not know), \
         which dtle-rs cannot read from the binlog; remove the attribute \
         (ALTER TABLE ... MODIFY without COMPRESSED) or leave the table out of the job"
    ))
}

fn kind_from_information_schema(
    data_type: &str,
    column_type: &str,
    octets: Option<u64>,
    charset: Option<&str>,
) -> ColumnKind {
    match data_type {
        "tinyint" => ColumnKind::Int(8),
        "smallint" => ColumnKind::Int(16),
        "mediumint" => ColumnKind::Int(24),
        "int" | "integer" => ColumnKind::Int(32),
        "bigint" => ColumnKind::Int(64),
        "float" => ColumnKind::Float,
        "double" | "real" => ColumnKind::Double,
        "decimal" | "numeric" => ColumnKind::Decimal,
        "bit" => ColumnKind::Bit,
        "year" => ColumnKind::Year,
        "date" => ColumnKind::Date,
        "time" => ColumnKind::Time(fractional_digits(column_type)),
        "datetime" => ColumnKind::DateTime,
        "timestamp" => ColumnKind::Timestamp,
        "enum" => ColumnKind::Enum,
        "set" => ColumnKind::Set,
        "binary" => ColumnKind::FixedBinary(octets.unwrap_or(0) as usize),
        "uuid" => ColumnKind::FixedBinary(16),
        "inet6" => ColumnKind::FixedBinary(16),
        "inet4" => ColumnKind::FixedBinary(4),
        "char" if charset.is_none() || column_type.starts_with("binary") => {
            ColumnKind::FixedBinary(octets.unwrap_or(0) as usize)
        }
        _ => ColumnKind::Bytes,
    }
}

fn kind_from_table_map(
    column_type: Option<ColumnType>,
    metadata: Option<&[u8]>,
    charset: Option<u16>,
) -> ColumnKind {
    use ColumnType::*;
    let meta = metadata.unwrap_or_default();
    match column_type {
        Some(MYSQL_TYPE_TINY) => ColumnKind::Int(8),
        Some(MYSQL_TYPE_SHORT) => ColumnKind::Int(16),
        Some(MYSQL_TYPE_INT24) => ColumnKind::Int(24),
        Some(MYSQL_TYPE_LONG) => ColumnKind::Int(32),
        Some(MYSQL_TYPE_LONGLONG) => ColumnKind::Int(64),
        Some(MYSQL_TYPE_FLOAT) => ColumnKind::Float,
        Some(MYSQL_TYPE_DOUBLE) => ColumnKind::Double,
        Some(MYSQL_TYPE_NEWDECIMAL | MYSQL_TYPE_DECIMAL) => ColumnKind::Decimal,
        Some(MYSQL_TYPE_BIT) => ColumnKind::Bit,
        Some(MYSQL_TYPE_YEAR) => ColumnKind::Year,
        Some(MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE) => ColumnKind::Date,
        Some(MYSQL_TYPE_TIME) => ColumnKind::Time(0),
        // TIME2's one metadata byte is its fractional digits.
        Some(MYSQL_TYPE_TIME2) => ColumnKind::Time(meta.first().copied().unwrap_or(0).min(6)),
        Some(MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2) => ColumnKind::DateTime,
        Some(MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2) => ColumnKind::Timestamp,
        Some(MYSQL_TYPE_ENUM) => ColumnKind::Enum,
        Some(MYSQL_TYPE_SET) => ColumnKind::Set,
        Some(MYSQL_TYPE_STRING) if charset == Some(BINARY_COLLATION) => {
            ColumnKind::FixedBinary(string_length(meta))
        }
        _ => ColumnKind::Bytes,
    }
}

/// The fractional digits of a temporal `COLUMN_TYPE` such as `time(3)` (0 without a length).
fn fractional_digits(column_type: &str) -> u8 {
    column_type
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(digits, _)| digits.trim().parse::<u8>().ok())
        .map_or(0, |fsp| fsp.min(6))
}

/// The declared byte length of a MYSQL_TYPE_STRING column from its two metadata bytes.
fn string_length(meta: &[u8]) -> usize {
    match meta {
        [b0, b1, ..] => {
            let (b0, b1) = (*b0 as usize, *b1 as usize);
            if b0 & 0x30 != 0x30 {
                b1 | (((b0 & 0x30) ^ 0x30) << 4)
            } else {
                b1
            }
        }
        _ => 0,
    }
}

/// The primary key, else the unique key with fewest columns, all NOT NULL.
fn choose_key(columns: &[ColumnSchema], index_rows: &[(String, i64, String)]) -> Vec<usize> {
    let mut indexes: Vec<(String, Vec<usize>, bool)> = Vec::new();
    for (name, non_unique, column) in index_rows {
        if *non_unique != 0 {
            continue;
        }
        let position = columns.iter().position(|c| &c.name == column);
        match indexes.iter_mut().find(|(n, _, _)| n == name) {
            Some((_, cols, usable)) => match position {
                Some(p) => cols.push(p),
                None => *usable = false,
            },
            None => indexes.push((
                name.clone(),
                position.into_iter().collect(),
                position.is_some(),
            )),
        }
    }
    if let Some((_, cols, true)) = indexes.iter().find(|(n, _, _)| n == "PRIMARY") {
        return cols.clone();
    }
    indexes
        .into_iter()
        .filter(|(_, cols, usable)| *usable && cols.iter().all(|&c| !columns[c].nullable))
        .min_by_key(|(_, cols, _)| cols.len())
        .map(|(_, cols, _)| cols)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_columns_know_their_fractional_digits() {
        let kind =
            |column_type: &str| kind_from_information_schema("time", column_type, None, None);
        assert_eq!(kind("time"), ColumnKind::Time(0));
        assert_eq!(kind("time(2)"), ColumnKind::Time(2));
        assert_eq!(kind("time(6)"), ColumnKind::Time(6));
        use ColumnType::*;
        assert_eq!(
            kind_from_table_map(Some(MYSQL_TYPE_TIME2), Some(&[2]), None),
            ColumnKind::Time(2)
        );
        assert_eq!(
            kind_from_table_map(Some(MYSQL_TYPE_TIME2), Some(&[]), None),
            ColumnKind::Time(0)
        );
        assert_eq!(
            kind_from_table_map(Some(MYSQL_TYPE_TIME), None, None),
            ColumnKind::Time(0)
        );
    }
}
