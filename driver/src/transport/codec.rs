//! The wire format between the tasks: versioned frames carrying a byte stream of items.
//!
//! # Format (version 1)
//! Each NATS message on a job's data subject is one frame:
//!
//! ```text
//! "DT" | version u8 | epoch u64 BE | seq u64 BE | chunk...
//! ```
//!
//! Within an epoch, the chunks of frames `1, 2, 3, ...` concatenate into one byte stream of items,
//! each `len u32 BE | MessagePack(Item)`. Frames are cut by size, not at item boundaries, so an item
//! (a 20 MB row, say) may span frames larger than NATS's max payload, and many small items share a
//! frame. The receiver feeds chunks to an [`ItemDecoder`] and gets whole items back; it never holds
//! more than one incomplete item.
//!
//! Control messages (sync, ack, resync) are MessagePack maps with the same version byte in front.
//! A receiver that sees another version stops with a definite error rather than guess.

use crate::change::Item;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The wire format this build speaks.
pub const FORMAT_VERSION: u8 = 1;
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

/// Reassembles items from the chunks of consecutive frames.
#[derive(Debug, Default)]
pub struct ItemDecoder {
    /// Bytes received and not yet decoded; `start` marks where the undecoded part begins.
    buf: Vec<u8>,
    start: usize,
}

impl ItemDecoder {
    /// Adds the next chunk of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
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
        Ok(Some(item))
    }

    /// Whether an item is partly received.
    pub fn is_mid_item(&self) -> bool {
        self.start < self.buf.len()
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
