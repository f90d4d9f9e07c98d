//! The change stream's hot path, from binlog values to the applier's items, on a row-heavy
//! stream: transactions of 100 row changes in `oltp_write_only`'s mix (two updates, a delete and
//! an insert), on sysbench's `sbtest` table and on a wide table of mixed types.
//!
//! - `binlog_decode/*`: [`driver::extractor::values::from_binlog`], binlog values to the change
//!   model's `Value`s (rows/s, 1,000 whole rows);
//! - `transport/*`: the extractor's [`ItemEncoder`] cutting frames as the sender does (1 MiB NATS
//!   payload, a flush at each commit) and the applier's [`ItemDecoder`] taking them apart again,
//!   in items/s and bytes/s (bytes of frames, headers included);
//! - `pipeline/*`: decode → encode → decode, binlog values to items the applier holds (items/s).
//!
//! Run: `cargo bench -p driver --bench stream` (a group alone: `-- transport/`; a fast, rougher
//! pass: `-- --quick`). Figures: docs/benchmarks.md, "Micro-benchmarks".

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use driver::change::{Gtid, Item, RowChange, RowKind, SourcePosition, TxnMeta, Value};
use driver::extractor::schema::{ColumnKind, ColumnSchema};
use driver::extractor::values::from_binlog;
use driver::transport::codec::{
    decode_frame, FrameHeader, ItemDecoder, ItemEncoder, FRAME_HEADER_LEN,
};
use jobs::{GtidSet, MariaDbGtid};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value as My;
use std::hint::black_box;
use std::time::Duration;

mod common;
use common::Rng;

/// Row changes per transaction, and transactions per stream.
const ROWS_PER_TXN: usize = 100;
const TXNS: usize = 10;
/// The sender's frame: NATS's default max payload (1 MiB) less the header and its margin.
const MAX_CHUNK: usize = (1 << 20) - FRAME_HEADER_LEN - 64;

fn column(name: &str, kind: ColumnKind, unsigned: bool, nullable: bool) -> ColumnSchema {
    ColumnSchema {
        name: name.into(),
        kind,
        unsigned,
        nullable,
        collation: None,
    }
}

/// One source table: its columns and a generator of binlog row images (`id` is the key).
struct Table {
    name: &'static str,
    columns: Vec<ColumnSchema>,
    row: fn(&mut Rng, i64) -> Vec<My>,
}

/// `sbtest`: `id INT PRIMARY KEY, k INT, c CHAR(120), pad CHAR(60)`.
fn sbtest() -> Table {
    Table {
        name: "sbtest",
        columns: vec![
            column("id", ColumnKind::Int(32), false, false),
            column("k", ColumnKind::Int(32), false, false),
            column("c", ColumnKind::Bytes, false, false),
            column("pad", ColumnKind::Bytes, false, false),
        ],
        row: |rng, id| {
            vec![
                My::Int(id),
                My::Int(rng.below(250_000) as i64),
                My::Bytes(rng.digit_groups(10)),
                My::Bytes(rng.digit_groups(5)),
            ]
        },
    }
}

/// A wide row: `id BIGINT UNSIGNED, amount DECIMAL(20,6), ratio DOUBLE, at DATETIME(6),
/// note VARCHAR(255) utf8mb4, body BLOB` (512 bytes of any value).
fn wide() -> Table {
    Table {
        name: "wide",
        columns: vec![
            column("id", ColumnKind::Int(64), true, false),
            column("amount", ColumnKind::Decimal, false, true),
            column("ratio", ColumnKind::Double, false, true),
            column("at", ColumnKind::DateTime, false, true),
            column("note", ColumnKind::Bytes, false, true),
            column("body", ColumnKind::Bytes, false, true),
        ],
        row: |rng, id| {
            let amount = format!(
                "{}{}.{:06}",
                if rng.below(4) == 0 { "-" } else { "" },
                rng.below(100_000_000_000_000),
                rng.below(1_000_000)
            );
            let note = format!(
                "Größe {} – 東京 ✓ naïve café №{} 🚀",
                rng.below(1_000_000),
                rng.below(1000)
            );
            vec![
                My::UInt((1 << 63) + id as u64),
                My::Bytes(amount.into_bytes()),
                My::Double(rng.next() as f64 / 3.0e7),
                My::Date(
                    2020 + rng.below(6) as u16,
                    1 + rng.below(12) as u8,
                    1 + rng.below(28) as u8,
                    rng.below(24) as u8,
                    rng.below(60) as u8,
                    rng.below(60) as u8,
                    rng.below(1_000_000) as u32,
                ),
                My::Bytes(note.into_bytes()),
                My::Bytes((0..512).map(|_| rng.next() as u8).collect()),
            ]
        },
    }
}

/// A row change as the binlog's row event carries it: undecoded images.
#[derive(Clone)]
enum RawChange {
    Insert(Vec<My>),
    Update(Vec<My>, Vec<My>),
    Delete(Vec<My>),
}

/// A source transaction of raw row changes.
#[derive(Clone)]
struct RawTxn {
    seq: u64,
    changes: Vec<RawChange>,
}

/// `TXNS` transactions of `ROWS_PER_TXN` changes each, in `oltp_write_only`'s mix: the row's `k`
/// changed, its `c` changed (here: the rest of the row), a row deleted, a row inserted.
fn raw_stream(table: &Table) -> Vec<RawTxn> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut next_id = 0i64;
    let mut row = |rng: &mut Rng| {
        next_id += 1;
        (table.row)(rng, next_id)
    };
    (0..TXNS)
        .map(|t| {
            let changes = (0..ROWS_PER_TXN)
                .map(|i| match i % 4 {
                    0 => {
                        let before = row(&mut rng);
                        let mut after = before.clone();
                        after[1] = (table.row)(&mut rng, 0).swap_remove(1);
                        RawChange::Update(before, after)
                    }
                    1 => {
                        let before = row(&mut rng);
                        let mut after = (table.row)(&mut rng, 0);
                        after[0] = before[0].clone();
                        RawChange::Update(before, after)
                    }
                    2 => RawChange::Delete(row(&mut rng)),
                    _ => RawChange::Insert(row(&mut rng)),
                })
                .collect();
            RawTxn {
                seq: 1000 + t as u64,
                changes,
            }
        })
        .collect()
}

/// One image decoded as the extractor does.
fn decode_image(columns: &[ColumnSchema], image: Vec<My>) -> Vec<Value> {
    columns
        .iter()
        .zip(image)
        .map(|(column, value)| from_binlog(column, BinlogValue::Value(value)).expect("decodes"))
        .collect()
}

fn gtid(seq: u64) -> Gtid {
    Gtid::MariaDb(MariaDbGtid {
        domain: 0,
        server: 1,
        seq,
    })
}

/// The items of `txns`: `Begin`, a `Row` per change, `Commit` with the position after it.
fn items(columns: &[ColumnSchema], txns: Vec<RawTxn>) -> Vec<Item> {
    let mut out = Vec::with_capacity(txns.len() * (ROWS_PER_TXN + 2));
    let mut position = SourcePosition {
        gtid_set: Some(GtidSet::MariaDb(Default::default())),
        file: "mariadb-bin.000042".into(),
        pos: 4,
        resume_from: None,
    };
    for txn in txns {
        out.push(Item::Begin(TxnMeta {
            gtid: Some(gtid(txn.seq)),
            timestamp: 1_760_000_000 + txn.seq as u32,
        }));
        for change in txn.changes {
            let kind = match change {
                RawChange::Insert(after) => RowKind::Insert(decode_image(columns, after)),
                RawChange::Update(before, after) => RowKind::Update {
                    before: decode_image(columns, before),
                    after: decode_image(columns, after),
                },
                RawChange::Delete(before) => RowKind::Delete(decode_image(columns, before)),
            };
            out.push(Item::Row(RowChange { table: 1, kind }));
        }
        if let Some(set) = &mut position.gtid_set {
            gtid(txn.seq).add_to(set);
        }
        position.pos += 40_000;
        out.push(Item::Commit {
            position: position.clone(),
        });
    }
    out
}

/// The sender's framing: whole frames as soon as they fill, the rest at each commit.
fn encode(items: impl IntoIterator<Item = Item>, frames: &mut Vec<Vec<u8>>) {
    let mut encoder = ItemEncoder::default();
    let mut seq = 0;
    let mut cut = |encoder: &mut ItemEncoder, frames: &mut Vec<Vec<u8>>| {
        seq += 1;
        frames.push(encoder.frame(FrameHeader { epoch: 7, seq }, MAX_CHUNK));
    };
    for item in items {
        encoder.push(&item).expect("encodes");
        let boundary = matches!(item, Item::Commit { .. });
        drop(item);
        if encoder.pending() >= MAX_CHUNK {
            while encoder.pending() >= MAX_CHUNK {
                cut(&mut encoder, frames);
            }
            encoder.compact(2 * MAX_CHUNK);
        }
        if boundary {
            while !encoder.is_empty() {
                cut(&mut encoder, frames);
            }
            encoder.compact(2 * MAX_CHUNK);
        }
    }
}

/// The receiver's end: frames checked and fed, items taken out; returns how many.
fn decode(frames: &[Vec<u8>]) -> usize {
    let mut decoder = ItemDecoder::default();
    let mut count = 0;
    for frame in frames {
        let (header, chunk) = decode_frame(frame).expect("a frame");
        black_box(header);
        decoder.feed(chunk);
        while let Some(item) = decoder.next_item().expect("an item") {
            black_box(&item);
            count += 1;
        }
    }
    count
}

fn binlog_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("binlog_decode");
    for table in [sbtest(), wide()] {
        let mut rng = Rng(42);
        let images: Vec<Vec<My>> = (1..=(ROWS_PER_TXN * TXNS) as i64)
            .map(|id| (table.row)(&mut rng, id))
            .collect();
        group.throughput(Throughput::Elements(images.len() as u64));
        group.bench_function(BenchmarkId::new(table.name, "rows"), |b| {
            b.iter_batched(
                || images.clone(),
                |images| {
                    images
                        .into_iter()
                        .map(|image| decode_image(&table.columns, image))
                        .collect::<Vec<_>>()
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn transport(c: &mut Criterion) {
    let mut group = c.benchmark_group("transport");
    for table in [sbtest(), wide()] {
        let items = items(&table.columns, raw_stream(&table));
        let mut frames = Vec::new();
        encode(items.iter().cloned(), &mut frames);
        let bytes: usize = frames.iter().map(Vec::len).sum();
        assert_eq!(decode(&frames), items.len());
        println!(
            "transport/{}: {} items ({} rows), {} frames, {} bytes, {} bytes/item",
            table.name,
            items.len(),
            ROWS_PER_TXN * TXNS,
            frames.len(),
            bytes,
            bytes / items.len()
        );
        let measures = [
            ("items", Throughput::Elements(items.len() as u64)),
            ("bytes", Throughput::Bytes(bytes as u64)),
        ];
        for (unit, throughput) in measures {
            group.throughput(throughput);
            let id = |what: &str| BenchmarkId::new(format!("{}/{what}", table.name), unit);
            // The encoder consumes its items (the sender drops each once encoded).
            group.bench_function(id("encode"), |b| {
                b.iter_batched(
                    || (items.clone(), Vec::with_capacity(frames.len())),
                    |(items, mut out)| {
                        encode(items, &mut out);
                        out
                    },
                    BatchSize::LargeInput,
                )
            });
            group.bench_function(id("decode"), |b| b.iter(|| decode(black_box(&frames))));
        }
        group.throughput(Throughput::Elements(items.len() as u64));
        group.bench_function(BenchmarkId::new(table.name, "encode+decode/items"), |b| {
            b.iter_batched(
                || items.clone(),
                |items| {
                    let mut out = Vec::with_capacity(frames.len());
                    encode(items, &mut out);
                    decode(&out)
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    for table in [sbtest(), wide()] {
        let raw = raw_stream(&table);
        let count = TXNS * (ROWS_PER_TXN + 2);
        group.throughput(Throughput::Elements(count as u64));
        group.bench_function(
            BenchmarkId::new(table.name, "decode-encode-decode/items"),
            |b| {
                b.iter_batched(
                    || raw.clone(),
                    |raw| {
                        let mut frames = Vec::new();
                        encode(items(&table.columns, raw), &mut frames);
                        let received = decode(&frames);
                        assert_eq!(received, count);
                        received
                    },
                    BatchSize::LargeInput,
                )
            },
        );
    }
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
    targets = binlog_decode, transport, pipeline
}
criterion_main!(benches);
