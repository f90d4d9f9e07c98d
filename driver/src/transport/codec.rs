//! The wire format between the tasks: versioned frames carrying a byte stream of items.
//!
//! # Format (version 2)
//! Each NATS message on a job's data subject is one frame:
//!
//! ```text
//! "DT" | version u8 | epoch u64 BE | seq u64 BE | chunk...
//! ```
//!
//! Within an epoch, the chunks of frames `1, 2, 3, ...` concatenate into one byte stream of items,
//! each `len u32 BE | MessagePack(Item)`, column values in their compact form (`change::wire`;
//! version 1 named every value's kind as a string). Frames are cut by size, not at item
//! boundaries, so an item (a 20 MB row, say) may span frames larger than NATS's max payload, and
//! many small items share a frame.
//!
//! Control messages (sync, ack, resync) are MessagePack maps with the same version byte in front.
//! A receiver that sees another version stops with a definite error rather than guess.
//!
//! # Cutting and reassembling in linear time and bounded memory
//! An item may be as large as a row (up to 1 GiB), so neither end may copy "the rest of the
//! buffer" per frame, which costs `item² / frame` bytes, nor keep a buffer sized for the largest
//! item ever seen.
//!
//! - [`ItemEncoder`] (the extractor's end) appends encoded items to one buffer and hands out
//!   frames from a moving offset into it: cutting a frame copies its chunk once, into the frame,
//!   and nothing else. When the caller is done publishing, [`ItemEncoder::compact`]
//!   moves the unsent tail (less than a frame) to the front, or into a fresh buffer when the old
//!   one grew beyond what the caller wants to keep, so a 512 MB row's buffer is released once its
//!   frames are out. Every byte is thus written once by the encoder and moved at most once.
//! - [`ItemDecoder`] (the applier's end) appends chunks to one buffer and decodes whole items from
//!   an offset into it. Once the length prefix of an incomplete item is known, the room for the
//!   whole item is reserved at once (no doubling); the consumed front is dropped only when it is
//!   at least half the buffer, so each byte moves at most once more; and the buffer of a large
//!   item is released as soon as the item is decoded, before it is returned. The decoder holds at
//!   most one incomplete item plus one chunk, and while it decodes a large item, exactly two
//!   copies of it exist: its bytes and the decoded item.
//!
//! Both count the bytes they write or move ([`ItemEncoder::bytes_copied`],
//! [`ItemDecoder::bytes_copied`]) so the tests can hold them to linear cost.

use crate::change::Item;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire format this build speaks.
pub const FORMAT_VERSION: u8 = 2;
const MAGIC: [u8; 2] = *b"DT";
/// Bytes of a frame before its chunk.
pub const FRAME_HEADER_LEN: usize = 2 + 1 + 8 + 8;
/// Largest item accepted: a row may be as large as `max_allowed_packet` (1 GiB).
const MAX_ITEM_LEN: usize = 1 << 30;

/// A frame or message that cannot be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Not a dtle-rs frame at all.
    #[error("not a dtle-rs frame (bad magic or too short)")]
    NotAFrame,
    /// Another wire format version.
    #[error("wire format version {found}, but this dtle-rs speaks version {FORMAT_VERSION}: run the same version on both tasks")]
    Version {
        /// The version found.
        found: u8,
    },
    /// An item's length prefix exceeds any possible item.
    #[error("item of {0} bytes exceeds the 1 GiB limit: the stream is corrupt")]
    ItemTooLarge(usize),
    /// MessagePack that does not decode.
    #[error("undecodable message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A value that does not encode.
    #[error("unencodable message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Where a frame belongs: its epoch (one per sync) and its place in that epoch's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Chosen by the extractor at each sync; frames of other epochs are stale.
    pub epoch: u64,
    /// 1, 2, 3, ... within the epoch; a gap means a frame was lost.
    pub seq: u64,
}

/// Builds one frame.
pub fn encode_frame(header: FrameHeader, chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + chunk.len());
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&header.epoch.to_be_bytes());
    out.extend_from_slice(&header.seq.to_be_bytes());
    out.extend_from_slice(chunk);
    out
}

/// Splits a frame into its header and chunk.
///
/// # Errors
/// [`CodecError::NotAFrame`] or [`CodecError::Version`].
pub fn decode_frame(frame: &[u8]) -> Result<(FrameHeader, &[u8]), CodecError> {
    if frame.len() < FRAME_HEADER_LEN || frame[..2] != MAGIC {
        return Err(CodecError::NotAFrame);
    }
    if frame[2] != FORMAT_VERSION {
        return Err(CodecError::Version { found: frame[2] });
    }
    let number = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&frame[at..at + 8]);
        u64::from_be_bytes(bytes)
    };
    Ok((
        FrameHeader {
            epoch: number(3),
            seq: number(11),
        },
        &frame[FRAME_HEADER_LEN..],
    ))
}

/// Appends one item to a byte stream.
///
/// # Errors
/// When the item cannot be encoded (it always can: kept for honesty about the encoder).
pub fn encode_item(item: &Item, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write(out, item)?;
    let len = out.len() - at - 4;
    let len = u32::try_from(len).map_err(|_| CodecError::ItemTooLarge(len))?;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// The extractor's end of the item stream: encoded items, handed out in chunks.
#[derive(Debug, Default)]
pub struct ItemEncoder {
    /// Encoded bytes; `buf[..sent]` have been handed out.
    buf: Vec<u8>,
    sent: usize,
    copied: u64,
}

impl ItemEncoder {
    /// Appends one item.
    ///
    /// # Errors
    /// As [`encode_item`].
    pub fn push(&mut self, item: &Item) -> Result<(), CodecError> {
        let before = self.buf.len();
        let result = encode_item(item, &mut self.buf);
        if result.is_err() {
            self.buf.truncate(before);
        }
        self.copied += (self.buf.len() - before) as u64;
        result
    }

    /// Bytes not handed out yet.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether every byte has been handed out.
    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Cuts the next frame: the next chunk of at most `max` bytes, handed out.
    pub fn frame(&mut self, header: FrameHeader, max: usize) -> Vec<u8> {
        let end = self.buf.len().min(self.sent.saturating_add(max));
        let frame = encode_frame(header, &self.buf[self.sent..end]);
        self.copied += (end - self.sent) as u64;
        self.sent = end;
        frame
    }

    /// Drops what was handed out: the unsent tail moves to the front of the buffer, or into a
    /// fresh one of `keep_capacity` when the buffer grew beyond that (a large item went out).
    /// Costs the tail's length, which the caller keeps below a frame by publishing first.
    pub fn compact(&mut self, keep_capacity: usize) {
        let rest = self.pending();
        if self.buf.capacity() > keep_capacity && rest <= keep_capacity {
            let mut fresh = Vec::with_capacity(keep_capacity);
            fresh.extend_from_slice(&self.buf[self.sent..]);
            self.buf = fresh;
        } else if self.sent > 0 {
            self.buf.copy_within(self.sent.., 0);
            self.buf.truncate(rest);
        } else {
            return;
        }
        self.sent = 0;
        self.copied += rest as u64;
    }

    /// Forgets everything (a new epoch), keeping at most `keep_capacity` bytes of buffer.
    pub fn clear(&mut self, keep_capacity: usize) {
        self.buf.clear();
        self.sent = 0;
        self.buf.shrink_to(keep_capacity);
    }

    /// Bytes written or moved so far: linear in the bytes pushed.
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }
}

/// An item larger than this releases the decoder's buffer once decoded, so the buffer does not
/// stay at the size of the largest item ever received.
const DECODER_KEEP_CAPACITY: usize = 4 << 20;

/// The applier's end of the item stream: chunks in, whole items out.
#[derive(Debug, Default)]
pub struct ItemDecoder {
    /// Bytes received and not yet decoded; `start` marks where the undecoded part begins.
    buf: Vec<u8>,
    start: usize,
    copied: u64,
}

impl ItemDecoder {
    /// Adds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            // What moves is at most what was consumed since the last move: linear overall.
            let rest = self.buf.len() - self.start;
            self.buf.copy_within(self.start.., 0);
            self.buf.truncate(rest);
            self.start = 0;
            self.copied += rest as u64;
        }
        if let Some(whole) = self.next_len().map(|len| 4 + len) {
            // The rest of an incomplete item, reserved at once rather than by doubling.
            let missing = (self.start + whole).saturating_sub(self.buf.len());
            if missing > chunk.len() {
                self.buf.reserve_exact(missing);
            }
        }
        self.buf.extend_from_slice(chunk);
        self.copied += chunk.len() as u64;
    }

    /// The length of the next item, once its prefix has arrived and is plausible.
    fn next_len(&self) -> Option<usize> {
        let rest = &self.buf[self.start..];
        let prefix: [u8; 4] = rest.get(..4)?.try_into().ok()?;
        let len = u32::from_be_bytes(prefix) as usize;
        (len <= MAX_ITEM_LEN).then_some(len)
    }

    /// The next complete item, if the stream holds one.
    ///
    /// # Errors
    /// A corrupt stream.
    pub fn next_item(&mut self) -> Result<Option<Item>, CodecError> {
        let rest = &self.buf[self.start..];
        if rest.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len > MAX_ITEM_LEN {
            return Err(CodecError::ItemTooLarge(len));
        }
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let item = rmp_serde::from_slice(&rest[4..4 + len])?;
        self.start += 4 + len;
        if 4 + len > DECODER_KEEP_CAPACITY {
            // Release the large item's bytes before the caller gets to work with the item.
            let tail = self.buf[self.start..].to_vec();
            self.copied += tail.len() as u64;
            self.buf = tail;
            self.start = 0;
        }
        Ok(Some(item))
    }

    /// Whether an item is partly received.
    pub fn is_mid_item(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Bytes written or moved so far: linear in the bytes fed.
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }

    /// Bytes of buffer held now.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

/// Encodes a control message: version byte, then MessagePack (as a map, so fields can be added).
///
/// # Errors
/// When the message cannot be encoded.
pub fn encode_control<T: Serialize>(message: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = vec![FORMAT_VERSION];
    rmp_serde::encode::write_named(&mut out, message)?;
    Ok(out)
}

/// Decodes a control message.
///
/// # Errors
/// Another version, or bytes that are not such a message.
pub fn decode_control<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.first() {
        Some(&FORMAT_VERSION) => Ok(rmp_serde::from_slice(&bytes[1..])?),
        Some(&found) => Err(CodecError::Version { found }),
        None => Err(CodecError::NotAFrame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::{ColumnDef, RowChange, RowKind, SourcePosition, TableDef, TxnMeta, Value};
    use proptest::prelude::*;

    fn value() -> impl Strategy<Value = Value> + Clone {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::Int),
            any::<u64>().prop_map(Value::UInt),
            any::<f32>().prop_map(Value::Float),
            any::<f64>().prop_map(Value::Double),
            "-?[0-9]{1,35}\\.[0-9]{0,30}".prop_map(Value::Decimal),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(Value::Bytes),
            (0u16..10000, 0u8..13, 0u8..32).prop_map(|(year, month, day)| Value::Date {
                year,
                month,
                day
            }),
            (any::<bool>(), 0u32..839, 0u8..60, 0u8..60, 0u32..1_000_000).prop_map(
                |(negative, hours, minutes, seconds, micros)| Value::Time {
                    negative,
                    hours,
                    minutes,
                    seconds,
                    micros
                }
            ),
            (
                0u16..10000,
                0u8..13,
                0u8..32,
                0u8..24,
                0u8..60,
                0u8..60,
                0u32..1_000_000
            )
                .prop_map(|(year, month, day, hour, minute, second, micros)| {
                    Value::DateTime {
                        year,
                        month,
                        day,
                        hour,
                        minute,
                        second,
                        micros,
                    }
                }),
            (0u64..4_294_967_296, 0u32..1_000_000)
                .prop_map(|(secs, micros)| Value::Timestamp { secs, micros }),
        ]
    }

    fn item() -> impl Strategy<Value = Item> {
        let row = prop::collection::vec(value(), 0..8);
        prop_oneof![
            (
                any::<u32>(),
                "[a-z]{1,10}",
                prop::collection::vec("[a-z_]{1,8}", 0..5)
            )
                .prop_map(|(id, name, cols)| Item::Table(TableDef {
                    id,
                    schema: "s".into(),
                    name,
                    key: (0..cols.len().min(1)).collect(),
                    columns: cols
                        .into_iter()
                        .map(|name| ColumnDef {
                            name,
                            nullable: true,
                            float: false
                        })
                        .collect(),
                })),
            (any::<u32>(), row.clone()).prop_map(|(table, r)| Item::Row(RowChange {
                table,
                kind: RowKind::Insert(r)
            })),
            (row.clone(), row.clone()).prop_map(|(before, after)| Item::Row(RowChange {
                table: 1,
                kind: RowKind::Update { before, after }
            })),
            any::<u32>().prop_map(|timestamp| Item::Begin(TxnMeta {
                gtid: None,
                timestamp
            })),
            ("[a-z.0-9]{1,20}", any::<u64>()).prop_map(|(file, pos)| Item::Commit {
                position: SourcePosition {
                    gtid_set: None,
                    file,
                    pos,
                    resume_from: None,
                }
            }),
        ]
    }

    proptest! {
        /// Items encoded into a stream, cut into frames of any size, come back whole and in order.
        #[test]
        fn items_survive_any_framing(
            items in prop::collection::vec(item(), 0..30),
            frame_len in 1usize..200,
            epoch in any::<u64>(),
        ) {
            let mut stream = Vec::new();
            for item in &items {
                encode_item(item, &mut stream).unwrap();
            }
            let mut decoder = ItemDecoder::default();
            let mut out = Vec::new();
            for (i, chunk) in stream.chunks(frame_len).enumerate() {
                let frame = encode_frame(FrameHeader { epoch, seq: i as u64 + 1 }, chunk);
                let (header, chunk) = decode_frame(&frame).unwrap();
                prop_assert_eq!(header, FrameHeader { epoch, seq: i as u64 + 1 });
                decoder.feed(chunk);
                while let Some(item) = decoder.next_item().unwrap() {
                    out.push(item);
                }
            }
            prop_assert!(!decoder.is_mid_item());
            prop_assert_eq!(out, items);
        }

        #[test]
        fn garbage_is_an_error_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            let _ = decode_frame(&bytes);
            let mut decoder = ItemDecoder::default();
            decoder.feed(&bytes);
            let _ = decoder.next_item();
            let _ = decode_control::<crate::transport::protocol::SyncRequest>(&bytes);
        }
    }

    /// Counts the bytes the current thread allocates, so a test can bound the memory traffic of
    /// the code it calls whatever that code does (a `split_off` per frame, a `to_vec` per chunk).
    mod counting {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        pub struct Counting;

        thread_local! {
            static ALLOCATED: Cell<u64> = const { Cell::new(0) };
        }

        fn count(bytes: usize) {
            // `try_with`: a thread being torn down has no counter left, and needs none.
            let _ = ALLOCATED.try_with(|n| n.set(n.get() + bytes as u64));
        }

        /// Bytes allocated by this thread so far (growth by `realloc` counts its new size).
        pub fn allocated() -> u64 {
            ALLOCATED.with(Cell::get)
        }

        // SAFETY: every call is passed on to the system allocator unchanged.
        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                count(layout.size());
                // SAFETY: the caller's contract is the system allocator's.
                unsafe { System.alloc(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                // SAFETY: as above.
                unsafe { System.dealloc(ptr, layout) }
            }
            unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
                count(layout.size());
                // SAFETY: as above.
                unsafe { System.alloc_zeroed(layout) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                count(new_size);
                // SAFETY: as above.
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }
    }

    #[global_allocator]
    static ALLOCATOR: counting::Counting = counting::Counting;

    fn large_row(bytes: usize) -> Item {
        Item::Row(RowChange {
            table: 7,
            kind: RowKind::Insert(vec![
                Value::Int(1),
                Value::Bytes((0..bytes).map(|i| (i % 251) as u8).collect()),
            ]),
        })
    }

    /// A large item is cut into many small frames and put together again in linear time and
    /// bounded memory: the quadratic way (copying the rest of the buffer for each frame) would
    /// copy and allocate `item² / (2 * frame)` bytes, here 2 GiB instead of some 24 MiB.
    #[test]
    fn a_large_item_is_framed_and_reassembled_in_linear_cost() {
        const ITEM: usize = 8 << 20;
        const FRAME: usize = 16 << 10;
        let item = large_row(ITEM);
        let mut frames = Vec::new();

        // The extractor's end, the way the sender drives it: push, publish whole frames as
        // they fill, compact, and at the boundary flush the rest.
        let allocated_before = counting::allocated();
        let mut encoder = ItemEncoder::default();
        encoder.push(&item).unwrap();
        let encoded = encoder.pending();
        assert!(encoded > ITEM);
        let mut seq = 0;
        let mut cut = |encoder: &mut ItemEncoder| {
            seq += 1;
            let frame = encoder.frame(FrameHeader { epoch: 1, seq }, FRAME);
            assert!(frame.len() <= FRAME_HEADER_LEN + FRAME);
            frame
        };
        while encoder.pending() >= FRAME {
            frames.push(cut(&mut encoder));
        }
        encoder.compact(2 * FRAME);
        assert!(encoder.pending() < FRAME);
        while !encoder.is_empty() {
            frames.push(cut(&mut encoder));
        }
        encoder.compact(2 * FRAME);
        let allocated = counting::allocated() - allocated_before;
        let frame_bytes: usize = frames.iter().map(Vec::len).sum();
        assert_eq!(frame_bytes, encoded + frames.len() * FRAME_HEADER_LEN);
        // The encoded item once (growth included), its frames once, and small change.
        assert!(
            allocated < 2 * encoded as u64 + frame_bytes as u64 + (64 << 10),
            "the encoder allocated {allocated} bytes for a {encoded}-byte item"
        );
        // Written once, copied into frames once, and less than a frame moved by compaction.
        assert!(
            encoder.bytes_copied() <= 2 * encoded as u64 + FRAME as u64,
            "the encoder copied {} bytes for a {encoded}-byte item",
            encoder.bytes_copied()
        );
        // A buffer grown for a large item is not kept.
        encoder
            .push(&Item::Begin(TxnMeta {
                gtid: None,
                timestamp: 1,
            }))
            .unwrap();
        assert!(encoder.pending() < 64);

        // The applier's end: frames in, the item out.
        let allocated_before = counting::allocated();
        let mut decoder = ItemDecoder::default();
        let mut largest_buffer = 0;
        let mut out = Vec::new();
        for frame in &frames {
            let (_, chunk) = decode_frame(frame).unwrap();
            decoder.feed(chunk);
            largest_buffer = largest_buffer.max(decoder.capacity());
            while let Some(item) = decoder.next_item().unwrap() {
                out.push(item);
            }
        }
        let allocated = counting::allocated() - allocated_before;
        assert_eq!(out, vec![item]);
        assert!(!decoder.is_mid_item());
        // One buffer for the item, reserved once its length is known, plus the first chunk.
        assert!(
            largest_buffer <= encoded + 2 * FRAME,
            "the decoder held {largest_buffer} bytes for a {encoded}-byte item"
        );
        // That buffer, the decoded item, and small change.
        assert!(
            allocated < 2 * encoded as u64 + (64 << 10),
            "the decoder allocated {allocated} bytes for a {encoded}-byte item"
        );
        assert!(
            decoder.bytes_copied() <= 2 * encoded as u64,
            "the decoder copied {} bytes for a {encoded}-byte item",
            decoder.bytes_copied()
        );
        // Released before the item was handed out.
        assert!(decoder.capacity() < 2 * FRAME);
    }

    /// Many small items through small frames: the decoder's compaction stays linear too.
    #[test]
    fn many_small_items_cost_linear_copies() {
        let mut encoder = ItemEncoder::default();
        let mut decoder = ItemDecoder::default();
        let mut received = 0;
        for n in 0..20_000u32 {
            encoder
                .push(&Item::Begin(TxnMeta {
                    gtid: None,
                    timestamp: n,
                }))
                .unwrap();
            while encoder.pending() >= 100 {
                let frame = encoder.frame(FrameHeader { epoch: 1, seq: 1 }, 100);
                let (_, chunk) = decode_frame(&frame).unwrap();
                decoder.feed(chunk);
                while decoder.next_item().unwrap().is_some() {
                    received += 1;
                }
            }
            encoder.compact(200);
        }
        let frame = encoder.frame(FrameHeader { epoch: 1, seq: 1 }, usize::MAX);
        decoder.feed(decode_frame(&frame).unwrap().1);
        while decoder.next_item().unwrap().is_some() {
            received += 1;
        }
        assert_eq!(received, 20_000);
        let mut stream = Vec::new();
        for n in 0..20_000u32 {
            let item = Item::Begin(TxnMeta {
                gtid: None,
                timestamp: n,
            });
            encode_item(&item, &mut stream).unwrap();
        }
        let total = stream.len() as u64;
        assert!(encoder.bytes_copied() <= 3 * total);
        assert!(decoder.bytes_copied() <= 2 * total);
        assert!(decoder.capacity() <= 1024);
    }

    #[test]
    fn another_version_is_refused() {
        let mut frame = encode_frame(FrameHeader { epoch: 1, seq: 1 }, b"x");
        frame[2] = 9;
        assert!(matches!(
            decode_frame(&frame),
            Err(CodecError::Version { found: 9 })
        ));
    }
}
