//! A job posted back as the server showed it: what in it only echoes the server's view.
//!
//! dtle 2.x users fetch a job (`GET /v1/job/{ID}`), edit it and post it back. What they fetched
//! carries the server's view besides the job: passwords as `*`, the Src's `Gtid` as what the target
//! has executed, `NodeName`/`NodeID` as the node that runs each task. Read as written, that would
//! be another job (password `*`, a start position, a pinned node). [`JobSpec::reconciled_with`]
//! takes those values back from the stored job when they are such echoes, so that a job posted
//! back unchanged is equal to the stored one (nothing restarts), and an edited one keeps its
//! passwords:
//! - a password (or a kept secret-looking field) posted as `*` is the stored one;
//! - a `NodeName`/`NodeID` naming the node the task runs on is the stored placement (no pin, or
//!   the stored one, which an orchestrator of one node does not follow);
//! - a `Gtid` (start after these executed transactions) that the job has already executed (a
//!   subset of the executed set shown) is no new start position: the stored one stays. Tasks
//!   resume from the target's stored position anyway.
//!
//! Status, indexes and the other read-only fields are not kept by the parser at all.

use crate::gtid::GtidSet;
use crate::spec::{JobSpec, KeptField, Password, Placement, StartPosition};

/// What the server showed of a stored job, besides the job itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shown<'a> {
    /// The executed GTID set shown as the Src's `Gtid`, if known.
    pub executed: Option<&'a GtidSet>,
    /// The node (name, ID) each task runs on: Src, then Dest.
    pub nodes: [Option<(&'a str, &'a str)>; 2],
}

impl JobSpec {
    /// This job, posted to replace `stored`, with every value that only echoes what the server
    /// showed of `stored` (see the module) taken from `stored`.
    pub fn reconciled_with(mut self, stored: &JobSpec, shown: &Shown<'_>) -> JobSpec {
        for (posted, kept) in [
            (
                &mut self.src.connection.password,
                &stored.src.connection.password,
            ),
            (
                &mut self.dest.connection.password,
                &stored.dest.connection.password,
            ),
        ] {
            if posted.expose() == Password::MASK {
                posted.clone_from(kept);
            }
        }
        unmask(&mut self.unrecognised, &stored.unrecognised);
        unmask(
            &mut self.orchestrator_settings,
            &stored.orchestrator_settings,
        );
        for (posted, kept, node) in [
            (
                &mut self.src.placement,
                &stored.src.placement,
                shown.nodes[0],
            ),
            (
                &mut self.dest.placement,
                &stored.dest.placement,
                shown.nodes[1],
            ),
        ] {
            unpin(posted, kept, node);
        }
        if let (StartPosition::AfterExecuted(set), Some(executed)) =
            (&self.src.extract.start, shown.executed)
        {
            if self.src.extract.start != stored.src.extract.start && set.is_within(executed) {
                self.src.extract.start = stored.src.extract.start.clone();
            }
        }
        self
    }
}

impl GtidSet {
    /// Whether every transaction of this set is in `other` (for MariaDB: every domain's position
    /// is at or before `other`'s).
    pub fn is_within(&self, other: &GtidSet) -> bool {
        self.meet(other) == *self
    }
}

/// Kept fields posted as `*` take the stored value at the same path.
fn unmask(posted: &mut [KeptField], stored: &[KeptField]) {
    for field in posted {
        if field.value.as_str() != Some(Password::MASK) {
            continue;
        }
        if let Some(kept) = stored.iter().find(|k| k.path == field.path) {
            field.value = kept.value.clone();
        }
    }
}

/// A pin on the node the task runs on is the server's echo: the stored placement stays.
fn unpin(posted: &mut Placement, stored: &Placement, node: Option<(&str, &str)>) {
    let Some((name, id)) = node else { return };
    if posted.node_name.as_deref() == Some(name) {
        posted.node_name.clone_from(&stored.node_name);
    }
    if posted.node_id.as_deref() == Some(id) {
        posted.node_id.clone_from(&stored.node_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(extra_src: &str, password: &str, node: &str) -> JobSpec {
        let text = format!(
            r#"{{"Name": "r", "Tasks": [
              {{"Type": "Src", "NodeName": "{node}", "Config": {{{extra_src}
                "ConnectionConfig": {{"Host": "h", "Port": 1, "User": "u", "Password": "{password}"}}}}}},
              {{"Type": "Dest", "Config": {{"ConnectionConfig": {{"Host": "h", "Port": 2, "User": "u", "Password": "{password}"}}}}}}]}}"#
        );
        crate::parse_job(&text).expect("valid").spec
    }

    #[test]
    fn echoes_of_the_servers_view_are_the_stored_values() {
        let stored = job("", "secret", "");
        let executed = GtidSet::parse("0-1-90").expect("gtid");
        let shown = Shown {
            executed: Some(&executed),
            nodes: [Some(("here", "id-1")), Some(("here", "id-1"))],
        };
        let posted = job(r#""Gtid": "0-1-80","#, "*", "here");
        assert_ne!(posted, stored);
        assert_eq!(posted.reconciled_with(&stored, &shown), stored);
        // Real changes stay changes, with the stored passwords.
        let ahead = job(r#""Gtid": "0-1-95","#, "*", "");
        let merged = ahead.reconciled_with(&stored, &shown);
        assert_ne!(merged.src.extract.start, stored.src.extract.start);
        assert_eq!(merged.src.connection.password.expose(), "secret");
        let pinned = job("", "secret", "there");
        assert_eq!(
            job("", "*", "here").reconciled_with(&pinned, &shown),
            pinned
        );
        let elsewhere = job("", "new", "there").reconciled_with(&stored, &shown);
        assert_eq!(elsewhere.src.placement.node_name.as_deref(), Some("there"));
        assert_eq!(elsewhere.dest.connection.password.expose(), "new");
    }
}
