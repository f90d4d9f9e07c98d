//! The applier's statement building, on sysbench's `sbtest` table and on a wide table of mixed
//! types:
//!
//! - `statements/*`: [`driver::applier::statements`]'s builders into both sinks: [`Text`] (exact
//!   literals appended to a reused batch buffer, the pipelined path) and [`Prepared`]
//!   (placeholders and parameters). A 500-row multi-row INSERT, the same rows as an upsert
//!   (`ON DUPLICATE KEY UPDATE`), 500 keys deleted by `IN (...)`, and a single-row UPDATE and
//!   DELETE by key; throughput in rows/s;
//! - `literal/*`: [`driver::mysql::literal::push`] for each kind of value (values/s).
//!
//! Run: `cargo bench -p driver --bench statements` (a group alone: `-- literal/`; a fast,
//! rougher pass: `-- --quick`). Figures: docs/benchmarks.md, "Micro-benchmarks".

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use driver::applier::statements::{
    delete_into, delete_keys_into, insert_into, update_into, upsert_into, Prepared, Text,
    MAX_BATCH_ROWS,
};
use driver::change::{ColumnDef, TableDef, Value};
use driver::mysql::literal;
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::Rng;

/// A target table (key: its first column) and a generator of its rows.
struct Table {
    def: TableDef,
    row: fn(&mut Rng, i64) -> Vec<Value>,
}

fn def(name: &str, columns: &[(&str, bool, bool)]) -> TableDef {
    TableDef {
        id: 1,
        schema: "sbtest".into(),
        name: name.into(),
        columns: columns
            .iter()
            .map(|&(name, nullable, float)| ColumnDef {
                name: name.into(),
                nullable,
                float,
            })
            .collect(),
        key: vec![0],
    }
}

/// `sbtest`: `id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60)`.
fn sbtest() -> Table {
    Table {
        def: def(
            "sbtest1",
            &[
                ("id", false, false),
                ("k", false, false),
                ("c", false, false),
                ("pad", false, false),
            ],
        ),
        row: |rng, id| {
            vec![
                Value::Int(id),
                Value::Int(rng.below(250_000) as i64),
                Value::Bytes(rng.digit_groups(10)),
                Value::Bytes(rng.digit_groups(5)),
            ]
        },
    }
}

/// `id BIGINT UNSIGNED, amount DECIMAL(20,6), ratio DOUBLE, at DATETIME(6),
/// note VARCHAR(255) utf8mb4, body BLOB` (512 bytes of any value, so some escaped).
fn wide() -> Table {
    Table {
        def: def(
            "wide",
            &[
                ("id", false, false),
                ("amount", true, false),
                ("ratio", true, true),
                ("at", true, false),
                ("note", true, false),
                ("body", true, false),
            ],
        ),
        row: |rng, id| {
            vec![
                Value::UInt((1 << 63) + id as u64),
                Value::Decimal(format!(
                    "{}{}.{:06}",
                    if rng.below(4) == 0 { "-" } else { "" },
                    rng.below(100_000_000_000_000),
                    rng.below(1_000_000)
                )),
                Value::Double(rng.next() as f64 / 3.0e7),
                Value::DateTime {
                    year: 2020 + rng.below(6) as u16,
                    month: 1 + rng.below(12) as u8,
                    day: 1 + rng.below(28) as u8,
                    hour: rng.below(24) as u8,
                    minute: rng.below(60) as u8,
                    second: rng.below(60) as u8,
                    micros: rng.below(1_000_000) as u32,
                },
                Value::Bytes(
                    format!(
                        "Größe {} – 東京 ✓ naïve café №{} 🚀",
                        rng.below(1_000_000),
                        rng.below(1000)
                    )
                    .into_bytes(),
                ),
                Value::Bytes((0..512).map(|_| rng.next() as u8).collect()),
            ]
        },
    }
}

fn statements(c: &mut Criterion) {
    let mut group = c.benchmark_group("statements");
    for table in [sbtest(), wide()] {
        let def = &table.def;
        let name = def.name.as_str();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let rows: Vec<Vec<Value>> = (1..=MAX_BATCH_ROWS as i64)
            .map(|id| (table.row)(&mut rng, id))
            .collect();
        let before = (table.row)(&mut rng, 7);
        let mut after = (table.row)(&mut rng, 7);
        after[0] = before[0].clone();
        let keys: Vec<Vec<i128>> = (1..=MAX_BATCH_ROWS as i128).map(|id| vec![id]).collect();
        // The pipelined path appends to a batch buffer that is kept from group to group.
        let mut batch: Vec<u8> = Vec::new();

        group.throughput(Throughput::Elements(rows.len() as u64));
        group.bench_function(BenchmarkId::new(name, "insert-500/text"), |b| {
            b.iter_batched(
                || rows.clone(),
                |rows| {
                    batch.clear();
                    insert_into(&mut Text(&mut batch), def, rows, false);
                    batch.len()
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "insert-500/prepared"), |b| {
            b.iter_batched(
                || rows.clone(),
                |rows| {
                    let mut statement = Prepared::default();
                    insert_into(&mut statement, def, rows, false);
                    statement
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "upsert-500/text"), |b| {
            b.iter_batched(
                || rows.clone(),
                |rows| {
                    batch.clear();
                    upsert_into(&mut Text(&mut batch), def, rows);
                    batch.len()
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "delete-keys-500/text"), |b| {
            b.iter(|| {
                batch.clear();
                delete_keys_into(&mut Text(&mut batch), def, black_box(&keys));
                batch.len()
            })
        });

        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new(name, "update-1/text"), |b| {
            b.iter_batched(
                || (before.clone(), after.clone()),
                |(before, after)| {
                    batch.clear();
                    update_into(&mut Text(&mut batch), def, before, after);
                    batch.len()
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "update-1/prepared"), |b| {
            b.iter_batched(
                || (before.clone(), after.clone()),
                |(before, after)| {
                    let mut statement = Prepared::default();
                    update_into(&mut statement, def, before, after);
                    statement
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "delete-1/text"), |b| {
            b.iter_batched(
                || before.clone(),
                |before| {
                    batch.clear();
                    delete_into(&mut Text(&mut batch), def, before);
                    batch.len()
                },
                BatchSize::SmallInput,
            )
        });
        group.bench_function(BenchmarkId::new(name, "delete-1/prepared"), |b| {
            b.iter_batched(
                || before.clone(),
                |before| {
                    let mut statement = Prepared::default();
                    delete_into(&mut statement, def, before);
                    statement
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn literals(c: &mut Criterion) {
    let mut group = c.benchmark_group("literal");
    group.throughput(Throughput::Elements(1));
    let mut rng = Rng(7);
    let values = [
        ("null", Value::Null),
        ("int", Value::Int(-2_147_483_648)),
        ("uint", Value::UInt(u64::MAX)),
        ("float", Value::Float(0.1)),
        ("double", Value::Double(-1.234_567_890_123_456_7e-300)),
        ("decimal", Value::Decimal("-12345678901234.567890".into())),
        ("bytes-char120", Value::Bytes(rng.digit_groups(10))),
        (
            "bytes-escapes64",
            Value::Bytes(
                b"it's a \\path\\ with\nnewlines\r and \0 nulls \x1a; 'quoted' text".to_vec(),
            ),
        ),
        (
            "date",
            Value::Date {
                year: 2024,
                month: 2,
                day: 29,
            },
        ),
        (
            "time",
            Value::Time {
                negative: true,
                hours: 838,
                minutes: 59,
                seconds: 59,
                micros: 30_000,
            },
        ),
        (
            "datetime",
            Value::DateTime {
                year: 2024,
                month: 12,
                day: 31,
                hour: 23,
                minute: 59,
                second: 59,
                micros: 999_999,
            },
        ),
        (
            "timestamp",
            Value::Timestamp {
                secs: 1_704_110_400,
                micros: 123_456,
            },
        ),
    ];
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    for (name, value) in &values {
        group.bench_function(*name, |b| {
            b.iter(|| {
                buf.clear();
                literal::push(&mut buf, black_box(value));
                buf.len()
            })
        });
    }
    // Binary strings are escaped byte by byte: one string pushed again and again would let the
    // branch predictor learn where its escapes are, so each push takes the next of 256.
    let blobs: Vec<Value> = (0..256)
        .map(|_| Value::Bytes((0..512).map(|_| rng.next() as u8).collect()))
        .collect();
    let mut next = blobs.iter().cycle();
    group.bench_function("bytes-blob512", |b| {
        b.iter(|| {
            buf.clear();
            literal::push(&mut buf, black_box(next.next().expect("endless")));
            buf.len()
        })
    });
    group.finish();
}

fn config() -> Criterion {
    // Short runs (the machine is shared); `--measurement-time`, `--sample-size` override.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = statements, literals
}
criterion_main!(benches);
