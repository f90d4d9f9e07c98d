//! When the reader tells the applier about progress it sends no rows for, and with what source
//! time: the `Heartbeat` items that carry filtered progress and make the lag mean
//! `Seconds_Behind_Master`.
//!
//! # Rules
//! - Filtered transactions move the position without sending anything; their progress goes out
//!   in a heartbeat at most once per [`EVERY`].
//! - A heartbeat carries timestamp 0, "caught up" (see [`crate::change::Item::Heartbeat`]), when
//!   the reader is at the end of the binlog, to the second the lag is counted in: the source
//!   sent its idle heartbeat event (whose own header timestamp is 0, which is no source time), or
//!   the last event read was written within the last second by this machine's clock. Otherwise
//!   it carries the last transaction's source time: a reader draining an old backlog is as far
//!   behind as that.
//! - After something was sent, a silence of [`IDLE_AFTER`] following a recent event also sends a
//!   caught-up heartbeat, so the lag reads 0 as soon as the applier has applied the last
//!   transaction, not only at the source's next heartbeat. It is sent once per idle spell (until
//!   something else is sent), so an idle job costs one small frame per source heartbeat.

use std::time::{Duration, Instant};

/// How often filtered progress, or a silent source, is reported.
pub const EVERY: Duration = Duration::from_secs(1);
/// Silence after a recent event that means the reader has read all there is.
pub const IDLE_AFTER: Duration = Duration::from_millis(50);

/// See the module docs.
#[derive(Debug)]
pub struct Pulse {
    /// When the applier was last told something (a heartbeat or a transaction).
    last_told: Instant,
    /// A heartbeat is wanted at the next opportunity.
    due: bool,
    /// The event being handled is the source's idle heartbeat.
    at_end: bool,
    /// Source time of the last transaction read, 0 before the first.
    last_txn_ts: u32,
    /// When the last real event arrived, and its source time.
    last_event: Option<(Instant, u32)>,
    /// The last thing sent was a caught-up heartbeat.
    told_caught_up: bool,
    /// The current silence has been looked at.
    idle_checked: bool,
}

impl Pulse {
    /// A reader that has just connected.
    pub fn new(now: Instant) -> Self {
        Self {
            last_told: now,
            due: false,
            at_end: false,
            last_txn_ts: 0,
            last_event: None,
            told_caught_up: false,
            idle_checked: false,
        }
    }

    /// An event arrived, with its header's timestamp and position (0 for events the source
    /// makes up, which say nothing of its clock).
    pub fn event(&mut self, timestamp: u32, log_pos: u32, now: Instant) {
        self.idle_checked = false;
        if timestamp > 0 && log_pos > 0 {
            self.last_event = Some((now, timestamp));
        }
    }

    /// The event is the source's idle heartbeat.
    pub fn source_heartbeat(&mut self) {
        self.due = true;
        self.at_end = true;
    }

    /// A transaction ended: `sent` when its changes went to the applier (which then knows where
    /// the source is), otherwise it was filtered out.
    pub fn transaction(&mut self, timestamp: u32, sent: bool, now: Instant) {
        if timestamp > 0 {
            self.last_txn_ts = timestamp;
        }
        if sent {
            self.last_told = now;
            self.told_caught_up = false;
        } else if now.duration_since(self.last_told) >= EVERY {
            self.due = true;
        }
    }

    /// After an event: the timestamp of a heartbeat to send now, if one is due. `open`: a
    /// transaction is being read (heartbeats go only between transactions); `wall_secs`: this
    /// machine's clock.
    pub fn after_event(&mut self, open: bool, now: Instant, wall_secs: u64) -> Option<u32> {
        let at_end = std::mem::take(&mut self.at_end);
        if open || !(self.due || now.duration_since(self.last_told) >= EVERY) {
            return None;
        }
        if at_end || self.recent(wall_secs) {
            return Some(0);
        }
        // Before any transaction there is no source time to tell, and no progress either.
        (self.last_txn_ts > 0).then_some(self.last_txn_ts)
    }

    /// Whether the last event read was written within the last second.
    fn recent(&self, wall_secs: u64) -> bool {
        self.last_event
            .is_some_and(|(_, timestamp)| wall_secs <= u64::from(timestamp) + 1)
    }

    /// When a silence would mean the end of the binlog, if it could: something was sent since
    /// the last caught-up heartbeat, and no transaction is open.
    pub fn idle_deadline(&self, open: bool) -> Option<Instant> {
        if open || self.told_caught_up || self.idle_checked {
            return None;
        }
        self.last_event.map(|(at, _)| at + IDLE_AFTER)
    }

    /// The silence after the last event lasted [`IDLE_AFTER`]: `Some(0)` when that means caught
    /// up (the last event is recent by `wall_secs`, this machine's clock).
    pub fn idle(&mut self, wall_secs: u64) -> Option<u32> {
        self.idle_checked = true;
        self.recent(wall_secs).then_some(0)
    }

    /// A heartbeat stamped `timestamp` was sent.
    pub fn sent(&mut self, timestamp: u32, now: Instant) {
        self.due = false;
        self.last_told = now;
        self.told_caught_up = timestamp == 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_heartbeat_means_caught_up_once_per_idle_spell() {
        let t0 = Instant::now();
        let mut pulse = Pulse::new(t0);
        pulse.event(0, 0, t0);
        pulse.source_heartbeat();
        assert_eq!(pulse.after_event(false, t0, 9_999), Some(0));
        pulse.sent(0, t0);
        assert_eq!(pulse.idle_deadline(false), None, "already told");
        // A transaction inside: no heartbeat in the middle of it.
        pulse.source_heartbeat();
        assert_eq!(pulse.after_event(true, t0, 9_999), None);
    }

    #[test]
    fn filtered_progress_goes_out_each_second_with_its_source_time() {
        let t0 = Instant::now();
        let mut pulse = Pulse::new(t0);
        let (behind, current) = (9_000, 1_001);
        pulse.event(1000, 500, t0);
        let later = t0 + EVERY;
        assert_eq!(pulse.after_event(false, later, behind), None, "no time");
        let soon = t0 + Duration::from_millis(10);
        pulse.transaction(1000, false, soon);
        assert_eq!(pulse.after_event(false, soon, behind), None);
        pulse.transaction(1001, false, later);
        assert_eq!(pulse.after_event(false, later, behind), Some(1001));
        pulse.sent(1001, later);
        pulse.transaction(1001, true, later);
        assert_eq!(pulse.after_event(false, later, behind), None);
        // Reading events of the last second: caught up, to the second.
        let again = later + EVERY;
        pulse.transaction(1001, false, again);
        assert_eq!(pulse.after_event(false, again, current), Some(0));
    }

    #[test]
    fn a_silence_after_a_recent_event_is_the_end_but_not_after_an_old_one() {
        let t0 = Instant::now();
        let mut pulse = Pulse::new(t0);
        assert_eq!(pulse.idle_deadline(false), None, "nothing read yet");
        pulse.event(5000, 800, t0);
        pulse.transaction(5000, true, t0);
        assert_eq!(pulse.idle_deadline(true), None);
        assert_eq!(pulse.idle_deadline(false), Some(t0 + IDLE_AFTER));
        assert_eq!(pulse.idle(5001), Some(0));
        assert_eq!(pulse.idle_deadline(false), None, "looked at once");
        pulse.sent(0, t0);
        pulse.event(4000, 900, t0);
        pulse.transaction(4000, true, t0);
        assert_eq!(pulse.idle(5001), None, "a backlog from long ago");
        // Events the source makes up (position 0) say nothing of its clock.
        pulse.event(5001, 0, t0);
        assert_eq!(pulse.idle(5001), None);
    }
}
