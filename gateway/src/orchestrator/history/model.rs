//! What the history keeps of one job: the records, their bounds, and the pure rules that change
//! them (no I/O here; [`super::History`] locks, applies them and writes the file).

use jobs::{JobSpec, NameMatch, Role};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Most status transitions kept per job (the oldest are dropped).
pub const MAX_TRANSITIONS: usize = 100;
/// Most exceptions kept per job; [`JobHistory::exceptions_total`] counts them all.
pub const MAX_EXCEPTIONS: usize = 100;
/// Most checkpoints kept per job; [`JobHistory::checkpoints_total`] counts them all.
pub const MAX_CHECKPOINTS: usize = 100;
/// Most replicated tables remembered per job.
pub const MAX_TABLES: usize = 1000;

/// Where a job is in its life, as the monitoring APIs tell it. The words are SeaTunnel's job
/// states (Flink's are derived from them by its API module).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    /// Registered and its tasks started (or restarting after a transient failure).
    Running,
    /// Paused by the user; resumes from the target's position.
    Paused,
    /// Ended by itself: the tasks finished (a snapshot-only job, `SkipIncrementalCopy`).
    Finished,
    /// Stopped by the user (`DELETE /v1/job/{ID}`, Flink's cancel, SeaTunnel's stop-job).
    Canceled,
    /// A task failed for good (a definite error, or more restarts than the policy allows).
    Failed,
    /// Stopped by the user after the target committed everything read: the last checkpoint is a
    /// savepoint, and posting the job again resumes from it.
    SavepointDone,
}

impl JobState {
    /// Whether the job has ended (it runs again only if posted again).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Finished | JobState::Canceled | JobState::Failed | JobState::SavepointDone
        )
    }

    /// The word stored and shown (`RUNNING`, `SAVEPOINT_DONE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Running => "RUNNING",
            JobState::Paused => "PAUSED",
            JobState::Finished => "FINISHED",
            JobState::Canceled => "CANCELED",
            JobState::Failed => "FAILED",
            JobState::SavepointDone => "SAVEPOINT_DONE",
        }
    }
}

/// One change of a job's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    /// The state entered.
    pub state: JobState,
    /// When, ms since the epoch.
    pub time_ms: u64,
    /// Why.
    pub message: String,
}

/// One task failure: the cause of a restart, or the failure that ended the task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionEntry {
    /// When, ms since the epoch.
    pub time_ms: u64,
    /// Which task failed.
    pub task: Role,
    /// The driver's error (passwords scrubbed).
    pub message: String,
    /// True when the task was restarted after it; false when it ended the task.
    pub restarted: bool,
}

/// One position commit seen on the target: what it had committed, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// 1, 2, ... per job, never reused.
    pub id: u64,
    /// When it was recorded, ms since the epoch.
    pub time_ms: u64,
    /// The GTID set the target had committed, when known.
    pub gtid_set: Option<String>,
    /// The binlog file of that position (empty when unknown).
    pub binlog_file: String,
    /// The offset in that file.
    pub binlog_pos: u64,
    /// Rows the target committed since the previous checkpoint.
    pub rows_since_previous: u64,
    /// Source transactions the target committed since the previous checkpoint.
    pub txns_since_previous: u64,
    /// Whether it was taken by a stop with savepoint.
    pub savepoint: bool,
    /// How long taking it took, ms (a savepoint: the stop; a sampled checkpoint: 0).
    pub duration_ms: u64,
}

impl Checkpoint {
    /// The position as one line: the GTID set, else `file:pos`, else empty.
    pub fn position_text(&self) -> String {
        match (&self.gtid_set, self.binlog_file.is_empty()) {
            (Some(set), _) if !set.is_empty() => set.clone(),
            (_, false) => format!("{}:{}", self.binlog_file, self.binlog_pos),
            _ => String::new(),
        }
    }
}

/// The last start of a job from a recorded position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restore {
    /// The checkpoint it started from (the latest one recorded then).
    pub checkpoint_id: u64,
    /// When, ms since the epoch.
    pub time_ms: u64,
    /// Whether that checkpoint is a savepoint.
    pub savepoint: bool,
    /// Its position ([`Checkpoint::position_text`]).
    pub position: String,
}

/// A position and the counters that go with it, read from the running tasks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionSample {
    /// The GTID set committed on the target.
    pub gtid_set: Option<String>,
    /// Binlog file.
    pub binlog_file: String,
    /// Binlog offset.
    pub binlog_pos: u64,
    /// Rows committed on the target so far in this run of the task.
    pub rows_applied: u64,
    /// Source transactions committed on the target so far in this run.
    pub txns_applied: u64,
}

impl PositionSample {
    fn same_position(&self, checkpoint: &Checkpoint) -> bool {
        self.gtid_set == checkpoint.gtid_set
            && self.binlog_file == checkpoint.binlog_file
            && self.binlog_pos == checkpoint.binlog_pos
    }

    /// Whether it says anything about where the target is.
    pub fn is_known(&self) -> bool {
        self.gtid_set.as_ref().is_some_and(|s| !s.is_empty()) || !self.binlog_file.is_empty()
    }
}

/// The last counters seen of one task, kept after it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexTotals {
    /// Rows it took in (the Src: read from the source; the Dest: received and applied).
    pub read_records: u64,
    /// Rows it passed on (the Src: sent; the Dest: committed on the target).
    pub write_records: u64,
    /// Bytes it received over NATS.
    pub read_bytes: u64,
    /// Bytes it sent over NATS.
    pub write_bytes: u64,
}

/// Everything kept of one job. See the module docs of [`super`] for when each part is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobHistory {
    /// The dtle job ID.
    pub job_id: String,
    /// The job's name.
    pub name: String,
    /// The job as last posted, passwords masked.
    pub spec: Option<JobSpec>,
    /// The replicated tables as the job names them (`schema.table`, `schema.*`, a pattern).
    pub table_rules: Vec<String>,
    /// The tables the Src was seen to replicate (`schema.table`), at most [`MAX_TABLES`].
    #[serde(default)]
    pub tables_seen: Vec<String>,
    /// When the job was first registered, ms since the epoch.
    pub created_ms: u64,
    /// When its current (or last) run started, ms since the epoch.
    pub started_ms: u64,
    /// Where it is now.
    pub state: JobState,
    /// When it ended, if it has.
    pub finished_ms: Option<u64>,
    /// The last error that failed a task (or, failing that, made one restart).
    pub last_error: Option<String>,
    /// State changes, oldest first, at most [`MAX_TRANSITIONS`].
    pub transitions: VecDeque<Transition>,
    /// Task failures, oldest first, at most [`MAX_EXCEPTIONS`].
    pub exceptions: VecDeque<ExceptionEntry>,
    /// Every exception ever recorded.
    pub exceptions_total: u64,
    /// Position commits, oldest first, at most [`MAX_CHECKPOINTS`].
    pub checkpoints: VecDeque<Checkpoint>,
    /// Every checkpoint ever recorded (savepoints included).
    pub checkpoints_total: u64,
    /// Savepoints among them.
    pub savepoints_total: u64,
    /// The latest savepoint, kept even once the ring has dropped it.
    pub latest_savepoint: Option<Checkpoint>,
    /// Starts from a recorded position (posted again, resumed, the agent restarted).
    pub restores_total: u64,
    /// The latest of them.
    pub last_restore: Option<Restore>,
    /// The last counters seen of each task.
    pub vertices: BTreeMap<Role, VertexTotals>,
    /// Whether the dtle job was purged (only this history is left of it).
    pub purged: bool,
    /// Per task, the time (ns) of the newest task event already looked at for exceptions.
    #[serde(default)]
    pub seen_event_ns: BTreeMap<Role, u64>,
    /// The applied counters at the latest checkpoint, to count rows since.
    #[serde(default)]
    pub applied_baseline: (u64, u64),
}

/// `schema.table` patterns of what a job replicates, as written in its `ReplicateDoDb`.
pub fn table_rules(spec: &JobSpec) -> Vec<String> {
    let name = |m: &NameMatch| match m {
        NameMatch::Exact(s) => s.clone(),
        NameMatch::Regex(p) => p.as_str().to_owned(),
    };
    let mut rules = Vec::new();
    for schema in &spec.src.extract.replicate_do_db {
        if schema.tables.is_empty() {
            rules.push(format!("{}.*", name(&schema.schema)));
        }
        for table in &schema.tables {
            rules.push(format!("{}.{}", name(&schema.schema), name(&table.table)));
        }
    }
    if rules.is_empty() {
        rules.push("*.*".to_owned());
    }
    rules
}

fn push_bounded<T>(ring: &mut VecDeque<T>, item: T, bound: usize) {
    ring.push_back(item);
    while ring.len() > bound {
        ring.pop_front();
    }
}

impl JobHistory {
    /// A job seen for the first time.
    pub fn new(spec: &JobSpec, now_ms: u64) -> Self {
        Self {
            job_id: spec.id.clone(),
            name: spec.name.clone(),
            spec: Some(spec.redacted()),
            table_rules: table_rules(spec),
            tables_seen: Vec::new(),
            created_ms: now_ms,
            started_ms: now_ms,
            state: JobState::Running,
            finished_ms: None,
            last_error: None,
            transitions: VecDeque::new(),
            exceptions: VecDeque::new(),
            exceptions_total: 0,
            checkpoints: VecDeque::new(),
            checkpoints_total: 0,
            savepoints_total: 0,
            latest_savepoint: None,
            restores_total: 0,
            last_restore: None,
            vertices: BTreeMap::new(),
            purged: false,
            seen_event_ns: BTreeMap::new(),
            applied_baseline: (0, 0),
        }
    }

    /// The replicated tables: those seen, else the job's rules.
    pub fn tables(&self) -> Vec<String> {
        if self.tables_seen.is_empty() {
            self.table_rules.clone()
        } else {
            self.tables_seen.clone()
        }
    }

    /// The latest checkpoint (savepoint or not).
    pub fn latest_checkpoint(&self) -> Option<&Checkpoint> {
        self.checkpoints.back()
    }

    /// Enters `state` (recorded even when it is the current one, as a new run of it). Ending
    /// states set the finish time; starting ones clear it.
    pub fn enter(&mut self, state: JobState, message: &str, now_ms: u64) {
        self.state = state;
        if state.is_terminal() {
            self.finished_ms = Some(now_ms);
        } else {
            self.finished_ms = None;
        }
        if state == JobState::Failed && !message.is_empty() {
            self.last_error = Some(message.to_owned());
        }
        push_bounded(
            &mut self.transitions,
            Transition {
                state,
                time_ms: now_ms,
                message: message.to_owned(),
            },
            MAX_TRANSITIONS,
        );
    }

    /// The job (re)starts: posted again, updated or resumed. With a checkpoint recorded it
    /// starts from the target's position, which counts as a restore of the latest one.
    pub fn start(&mut self, spec: &JobSpec, message: &str, now_ms: u64) {
        self.name = spec.name.clone();
        self.spec = Some(spec.redacted());
        self.table_rules = table_rules(spec);
        self.purged = false;
        self.started_ms = now_ms;
        self.note_restore(now_ms);
        self.enter(JobState::Running, message, now_ms);
    }

    /// Counts a start from the latest recorded position, if there is one.
    pub fn note_restore(&mut self, now_ms: u64) {
        if let Some(latest) = self.checkpoints.back() {
            self.restores_total += 1;
            self.last_restore = Some(Restore {
                checkpoint_id: latest.id,
                time_ms: now_ms,
                savepoint: latest.savepoint,
                position: latest.position_text(),
            });
        }
        // The tasks' counters start again from zero.
        self.applied_baseline = (0, 0);
    }

    /// Records a task failure seen in task event `event_ns`, once: events at or before the
    /// newest one already looked at for that task are ignored. Returns whether it was new.
    pub fn record_exception(&mut self, event_ns: u64, entry: ExceptionEntry) -> bool {
        let seen = self.seen_event_ns.entry(entry.task).or_insert(0);
        if event_ns <= *seen {
            return false;
        }
        *seen = event_ns;
        if !entry.restarted || self.last_error.is_none() {
            self.last_error = Some(entry.message.clone());
        }
        self.exceptions_total += 1;
        push_bounded(&mut self.exceptions, entry, MAX_EXCEPTIONS);
        true
    }

    /// Marks task events up to `event_ns` as looked at.
    pub fn saw_events_until(&mut self, task: Role, event_ns: u64) {
        let seen = self.seen_event_ns.entry(task).or_insert(0);
        *seen = (*seen).max(event_ns);
    }

    /// Records a checkpoint from `sample` unless its position is the latest one's (a savepoint
    /// is always recorded). Returns it when recorded.
    pub fn checkpoint(
        &mut self,
        sample: &PositionSample,
        savepoint: bool,
        duration_ms: u64,
        now_ms: u64,
    ) -> Option<Checkpoint> {
        if !savepoint
            && (!sample.is_known()
                || self
                    .checkpoints
                    .back()
                    .is_some_and(|last| sample.same_position(last)))
        {
            return None;
        }
        let (rows0, txns0) = self.applied_baseline;
        // Counters restart with every run of the task: below the baseline means a new run.
        let since = |now: u64, base: u64| if now >= base { now - base } else { now };
        let checkpoint = Checkpoint {
            id: self.checkpoints_total + 1,
            time_ms: now_ms,
            gtid_set: sample.gtid_set.clone(),
            binlog_file: sample.binlog_file.clone(),
            binlog_pos: sample.binlog_pos,
            rows_since_previous: since(sample.rows_applied, rows0),
            txns_since_previous: since(sample.txns_applied, txns0),
            savepoint,
            duration_ms,
        };
        self.applied_baseline = (sample.rows_applied, sample.txns_applied);
        self.checkpoints_total += 1;
        if savepoint {
            self.savepoints_total += 1;
            self.latest_savepoint = Some(checkpoint.clone());
        }
        push_bounded(&mut self.checkpoints, checkpoint.clone(), MAX_CHECKPOINTS);
        Some(checkpoint)
    }

    /// Remembers tables the Src replicates. Returns whether any was new.
    pub fn saw_tables<'a>(&mut self, tables: impl IntoIterator<Item = &'a String>) -> bool {
        let mut changed = false;
        for table in tables {
            if self.tables_seen.len() >= MAX_TABLES {
                break;
            }
            if let Err(at) = self.tables_seen.binary_search(table) {
                self.tables_seen.insert(at, table.clone());
                changed = true;
            }
        }
        changed
    }

    /// The time the job entered each state last (for Flink's `timestamps`).
    pub fn state_times(&self) -> BTreeMap<JobState, u64> {
        let mut times = BTreeMap::new();
        for t in &self.transitions {
            times.insert(t.state, t.time_ms);
        }
        times
    }
}
