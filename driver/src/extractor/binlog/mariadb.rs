//! MariaDB's own binlog events, which mysql_common does not decode (it returns `None` for them):
//! GTID (type 162) and GTID_LIST (type 163). Layouts from MariaDB's log_event.h, checked against a
//! 10.11 server (see ../shared/notes/mariadb-binlog.md).

use jobs::MariaDbGtid;

/// MariaDB GTID event type.
pub const GTID_EVENT: u8 = 162;
/// MariaDB GTID list event type.
pub const GTID_LIST_EVENT: u8 = 163;
/// MariaDB annotate-rows event type (the statement text of row events).
pub const ANNOTATE_ROWS_EVENT: u8 = 160;
/// MariaDB binlog checkpoint event type.
pub const BINLOG_CHECKPOINT_EVENT: u8 = 161;

/// `flags2` bit: the transaction is a single statement without BEGIN/COMMIT (DDL, or a
/// non-transactional engine).
const FL_STANDALONE: u8 = 1;
/// `flags2` bit: a commit id follows (group commit; usable for parallel apply).
const FL_GROUP_COMMIT_ID: u8 = 2;
/// `flags2` bit: the transaction is an XA transaction's `XA PREPARE` (its rows).
const FL_PREPARED_XA: u8 = 64;
/// `flags2` bit: the transaction is an `XA COMMIT` or `XA ROLLBACK` of a prepared one.
const FL_COMPLETED_XA: u8 = 128;
/// The event that ends an `XA PREPARE` transaction.
pub const XA_PREPARE_LOG_EVENT: u8 = 38;

/// The part a GTID event's transaction plays in an XA transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XaPart {
    /// `XA START ... XA END; XA PREPARE`: the rows, not yet committed.
    Prepare,
    /// `XA COMMIT` or `XA ROLLBACK` of a transaction prepared earlier.
    Complete,
}

/// A decoded MariaDB GTID event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GtidEvent {
    /// The transaction's GTID (the server id comes from the event header).
    pub gtid: MariaDbGtid,
    /// Whether the transaction is one statement with no BEGIN/COMMIT around it.
    pub standalone: bool,
    /// The group-commit id, when present.
    pub commit_id: Option<u64>,
    /// Its part in an XA transaction, if any.
    pub xa: Option<XaPart>,
}

/// Decodes a GTID event body (`seq u64 LE | domain u32 LE | flags2 u8 | [commit_id u64]`).
pub fn parse_gtid(body: &[u8], server_id: u32) -> Option<GtidEvent> {
    let seq = u64::from_le_bytes(body.get(0..8)?.try_into().ok()?);
    let domain = u32::from_le_bytes(body.get(8..12)?.try_into().ok()?);
    let flags2 = *body.get(12)?;
    let commit_id = if flags2 & FL_GROUP_COMMIT_ID != 0 {
        Some(u64::from_le_bytes(body.get(13..21)?.try_into().ok()?))
    } else {
        None
    };
    Some(GtidEvent {
        gtid: MariaDbGtid {
            domain,
            server: server_id,
            seq,
        },
        standalone: flags2 & FL_STANDALONE != 0,
        commit_id,
        xa: if flags2 & FL_PREPARED_XA != 0 {
            Some(XaPart::Prepare)
        } else if flags2 & FL_COMPLETED_XA != 0 {
            Some(XaPart::Complete)
        } else {
            None
        },
    })
}

/// Decodes a GTID_LIST event body (`count u32 LE` (low 28 bits) then `domain u32 | server u32 |
/// seq u64` each).
pub fn parse_gtid_list(body: &[u8]) -> Option<Vec<MariaDbGtid>> {
    let count = u32::from_le_bytes(body.get(0..4)?.try_into().ok()?) & 0x0fff_ffff;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as usize {
        let at = 4 + i * 16;
        let entry = body.get(at..at + 16)?;
        out.push(MariaDbGtid {
            domain: u32::from_le_bytes(entry[0..4].try_into().ok()?),
            server: u32::from_le_bytes(entry[4..8].try_into().ok()?),
            seq: u64::from_le_bytes(entry[8..16].try_into().ok()?),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gtid_event_with_commit_id() {
        let mut body = Vec::new();
        body.extend_from_slice(&42u64.to_le_bytes());
        body.extend_from_slice(&7u32.to_le_bytes());
        body.push(FL_STANDALONE | FL_GROUP_COMMIT_ID);
        body.extend_from_slice(&99u64.to_le_bytes());
        let event = parse_gtid(&body, 3).unwrap();
        assert_eq!(event.gtid.to_string(), "7-3-42");
        assert!(event.standalone);
        assert_eq!(event.commit_id, Some(99));
        assert_eq!(event.xa, None);
        assert!(parse_gtid(&body[..12], 3).is_none());
        let mut xa = body[..12].to_vec();
        xa.push(FL_PREPARED_XA);
        assert_eq!(
            parse_gtid(&xa, 3).map(|e| e.xa),
            Some(Some(XaPart::Prepare))
        );
        xa[12] = FL_COMPLETED_XA;
        assert_eq!(
            parse_gtid(&xa, 3).map(|e| e.xa),
            Some(Some(XaPart::Complete))
        );
    }

    proptest! {
        #[test]
        fn gtid_lists_decode_what_was_encoded(entries in prop::collection::vec((any::<u32>(), any::<u32>(), any::<u64>()), 0..20)) {
            let mut body = (entries.len() as u32).to_le_bytes().to_vec();
            for (d, s, q) in &entries {
                body.extend_from_slice(&d.to_le_bytes());
                body.extend_from_slice(&s.to_le_bytes());
                body.extend_from_slice(&q.to_le_bytes());
            }
            let list = parse_gtid_list(&body).unwrap();
            let back: Vec<(u32, u32, u64)> = list.iter().map(|g| (g.domain, g.server, g.seq)).collect();
            prop_assert_eq!(back, entries);
        }

        #[test]
        fn truncated_bodies_are_none_not_panics(body in prop::collection::vec(any::<u8>(), 0..40)) {
            let _ = parse_gtid(&body, 1);
            let _ = parse_gtid_list(&body);
        }
    }
}
