//! XA transactions in the binlog: an XA transaction's rows arrive at its `XA PREPARE` (a
//! transaction of their own, ended by an XA_PREPARE event) but take effect at its `XA COMMIT`, a
//! later transaction; an `XA ROLLBACK` drops them.
//!
//! The reader keeps each prepared transaction's row items ([`Prepared`]) and sends them as the
//! `XA COMMIT`'s transaction, under that transaction's GTID. While one is prepared and not
//! resolved, every position sent carries `resume_from`, the position before its prepare, so a
//! restart reads the prepare again (the applier skips what it already holds, by GTID).

use super::{ExtractCtx, OpenTxn, Reader, Stop};
use crate::change::Item;
use jobs::GtidSet;
use std::time::Instant;

/// An XA transaction prepared on the source and not yet committed or rolled back.
pub(super) struct Prepared {
    /// The XA id as the source's statements print it (`X'7831',X'',1`).
    pub(super) xid: String,
    /// The position before its `XA PREPARE`: where a restart must read from to see its rows.
    pub(super) before: Option<GtidSet>,
    /// Its row items.
    pub(super) rows: Vec<Item>,
}

/// An XA statement of the binlog, with its XA id as the source prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum XaStatement<'a> {
    Start(&'a str),
    End(&'a str),
    Commit(&'a str),
    Rollback(&'a str),
}

impl<'a> XaStatement<'a> {
    pub(super) fn parse(sql: &'a str) -> Option<Self> {
        let mut words = sql.splitn(3, char::is_whitespace);
        if !words.next()?.eq_ignore_ascii_case("XA") {
            return None;
        }
        let verb = words.next()?;
        let xid = words.next()?.trim();
        let is = |w: &str| verb.eq_ignore_ascii_case(w);
        if is("START") || is("BEGIN") {
            Some(XaStatement::Start(xid))
        } else if is("END") {
            Some(XaStatement::End(xid))
        } else if is("COMMIT") {
            Some(XaStatement::Commit(xid))
        } else if is("ROLLBACK") {
            Some(XaStatement::Rollback(xid))
        } else {
            None
        }
    }
}

impl Reader {
    /// The XA state of a transaction that prepares here.
    pub(super) fn prepare_here(&self) -> Prepared {
        Prepared {
            xid: String::new(),
            before: self.position.gtid_set.clone(),
            rows: Vec::new(),
        }
    }

    pub(super) async fn xa_statement(
        &mut self,
        ctx: &mut ExtractCtx<'_>,
        xa: XaStatement<'_>,
        timestamp: u32,
    ) -> Result<(), Stop> {
        match xa {
            XaStatement::Start(xid) | XaStatement::End(xid) => {
                let here = self.prepare_here();
                let txn = self
                    .txn
                    .get_or_insert_with(|| OpenTxn::new(None, timestamp, false));
                let prepared = txn.preparing.get_or_insert(here);
                if prepared.xid.is_empty() {
                    prepared.xid = xid.to_owned();
                }
                Ok(())
            }
            XaStatement::Commit(xid) => {
                let Some(at) = self.prepared.iter().position(|p| p.xid == xid) else {
                    tracing::warn!(
                        xid,
                        "XA COMMIT of a transaction prepared before the job's start position: \
                         its rows are not replicated"
                    );
                    return self.commit(ctx).await;
                };
                let prepared = self.prepared.remove(at);
                let count = prepared.rows.len() as u64;
                self.begin(ctx, timestamp).await?;
                for item in &prepared.rows {
                    ctx.sender.send(item, ctx.cancel).await?;
                }
                if let Some(txn) = self.txn.as_mut() {
                    txn.rows += count;
                }
                self.commit(ctx).await
            }
            XaStatement::Rollback(xid) => {
                self.prepared.retain(|p| p.xid != xid);
                self.commit(ctx).await
            }
        }
    }

    /// The end of an `XA PREPARE` transaction: its rows wait for its `XA COMMIT`.
    pub(super) async fn xa_prepared(&mut self) -> Result<(), Stop> {
        let Some(mut txn) = self.txn.take() else {
            return Ok(());
        };
        if let Some(prepared) = txn.preparing.take() {
            self.prepared.push(prepared);
        }
        self.pass(&txn);
        // Its progress goes out like a filtered transaction's, with where a restart must read from.
        self.pulse.transaction(txn.timestamp, false, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xa_statements_are_recognised_with_their_ids() {
        assert_eq!(
            XaStatement::parse("XA START X'7831',X'',1"),
            Some(XaStatement::Start("X'7831',X'',1"))
        );
        assert_eq!(
            XaStatement::parse("xa commit X'7831',X'',1"),
            Some(XaStatement::Commit("X'7831',X'',1"))
        );
        assert_eq!(
            XaStatement::parse("XA ROLLBACK X'01',X'02',7"),
            Some(XaStatement::Rollback("X'01',X'02',7"))
        );
        assert_eq!(XaStatement::parse("XA RECOVER"), None);
        assert_eq!(XaStatement::parse("ALTER TABLE xa ADD c INT"), None);
    }
}
