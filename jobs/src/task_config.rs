//! The two tasks' `Config` objects, read into [`SrcTask`] and [`DestTask`].
//!
//! dtle 2.x and 3.x shared one config struct between the tasks: any field may appear on either,
//! and the later shape moved every Dest field onto the Src task (`DestConnectionConfig`,
//! `ParallelWorkers`, ...) leaving Dest only `DestType`. So each field has an owner (extractor
//! fields: Src; applier fields: Dest) and is read from the owner's config, or from the other task's
//! when the owner lacks it. When both tasks carry it with different values the owner's wins and the
//! other is reported, as dtle's own 2.x listing echoed Src fields on Dest.

use crate::diagnostic::Diagnostics;
use crate::gtid::GtidSet;
use crate::read::ObjectReader;
use crate::replicate::{read_rules, RuleList};
use crate::spec::{
    ApplyConfig, ConnectionConfig, DestTask, ExtractConfig, Placement, Role, SrcTask, StartPosition,
};
use crate::sql_filter::{SqlFilter, SqlFilterWord};
use std::collections::BTreeSet;

/// One task's `Config` as found by a front-end.
pub(crate) struct TaskInput<'a> {
    /// The config object (an empty one when the task had none; the front-end reported that).
    pub config: ObjectReader<'a>,
    /// Where the task should run.
    pub placement: Placement,
}

/// Fields the server writes into the task configs it shows (dtle 2.x's scheduler set `NatsAddr`
/// on every task): reported when posted back, not kept.
const SERVER_SET_FIELDS: &[(&str, &str)] = &[(
    "NatsAddr",
    "set by the agent (the NATS server its tasks use); ignored when posted",
)];

/// Fields dtle accepted that dtle-rs does not use, with why; kept and reported as warnings.
const IGNORED_FIELDS: &[(&str, &str)] = &[
    ("ApproveHeterogeneous", "deprecated in dtle 2.x; not used"),
    ("MsgBytesLimit", "dtle 2.x field, not used: queues are bounded by ReplChanBufferSize"),
    ("MsgsLimit", "dtle 2.x field, not used: queues are bounded by ReplChanBufferSize"),
    ("BytesLimit", "dtle 2.x field, not used: queues are bounded by ReplChanBufferSize"),
    ("TrafficAgainstLimits", "dtle field, not used by dtle-rs"),
    ("MaxRetries", "dtle field, not used: transient errors are retried with backoff, RetryTxLimit bounds transaction retries"),
    ("BulkInsert1", "dtle tuning field, not used by dtle-rs"),
    ("BulkInsert2", "dtle tuning field, not used by dtle-rs"),
    ("BulkInsert3", "dtle tuning field, not used by dtle-rs"),
    ("NBulkInsert", "dtle tuning field, not used by dtle-rs"),
    ("BigTxSrcQueue", "dtle tuning field, not used: big transactions are streamed in parts"),
    ("TimeZone", "not used: sessions run in UTC"),
    ("GroupCount", "dtle 2.x field, not used: see GroupMaxSize and GroupTimeout"),
];

/// Fields naming features dtle-rs does not have; setting them is an error, not a silent no-op.
const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    (
        "KafkaConfig",
        "Kafka targets are not supported by dtle-rs; only MySQL/MariaDB",
    ),
    (
        "OracleConfig",
        "Oracle sources are not supported by dtle-rs; only MySQL/MariaDB",
    ),
    (
        "SrcOracleConfig",
        "Oracle sources are not supported by dtle-rs; only MySQL/MariaDB",
    ),
    ("TwoWaySync", "two-way sync is not supported by dtle-rs"),
    ("TwoWaySyncGtid", "two-way sync is not supported by dtle-rs"),
    ("WaitOnJob", "WaitOnJob is not supported by dtle-rs"),
];

/// Reads both tasks' configs. `None` when an error was reported.
pub(crate) fn read_tasks<'a>(
    src: TaskInput<'a>,
    dest: TaskInput<'a>,
    diags: &mut Diagnostics,
) -> Option<(SrcTask, DestTask)> {
    let TaskInput {
        config: mut s,
        placement: src_placement,
    } = src;
    let TaskInput {
        config: mut d,
        placement: dest_placement,
    } = dest;

    let src_conn = pick_connection(
        Role::Src,
        &mut s,
        &mut d,
        &[
            (Role::Src, "ConnectionConfig"),
            (Role::Src, "SrcConnectionConfig"),
        ],
        diags,
    );
    let dest_conn = pick_connection(
        Role::Dest,
        &mut s,
        &mut d,
        &[
            (Role::Dest, "ConnectionConfig"),
            (Role::Src, "DestConnectionConfig"),
            (Role::Dest, "DestConnectionConfig"),
        ],
        diags,
    );
    read_dest_type(&mut s, &mut d, diags);
    reject_unsupported(&mut s, diags);
    reject_unsupported(&mut d, diags);

    let extract = read_extract(&mut s, &mut d, diags);
    let apply = read_apply(&mut d, &mut s, diags);

    for config in [s, d] {
        diags.skip_read_only(config.finish(), SERVER_SET_FIELDS, IGNORED_FIELDS);
    }

    Some((
        SrcTask {
            placement: src_placement,
            connection: src_conn?,
            extract: extract?,
        },
        DestTask {
            placement: dest_placement,
            connection: dest_conn?,
            apply,
        },
    ))
}

/// Where a field owned by one task is read from: the owner's config, or else the other task's.
fn pick<'r, 'a>(
    owner: &'r mut ObjectReader<'a>,
    other: &'r mut ObjectReader<'a>,
    key: &str,
    diags: &mut Diagnostics,
) -> &'r mut ObjectReader<'a> {
    match (owner.peek(key), other.has(key)) {
        (Some(mine), true) => {
            if let Some((theirs, path)) = other.raw(key) {
                if theirs != mine {
                    diags.warning(
                        &path,
                        format!("differs from {}, which is used", owner.field_path(key)),
                    );
                }
            }
            owner
        }
        (None, true) => other,
        _ => owner,
    }
}

/// Reads the connection of `role` from the one place it is given among `candidates` (which task's
/// config, which key); the first candidate is the canonical place named when it is missing.
fn pick_connection<'a>(
    role: Role,
    s: &mut ObjectReader<'a>,
    d: &mut ObjectReader<'a>,
    candidates: &[(Role, &str)],
    diags: &mut Diagnostics,
) -> Option<ConnectionConfig> {
    let mut present = candidates.iter().filter(|(task, key)| match task {
        Role::Src => s.has(key),
        Role::Dest => d.has(key),
    });
    let first = present.next();
    let rest: Vec<&(Role, &str)> = present.collect();
    let path_of =
        |(task, key): &(Role, &str), s: &ObjectReader<'_>, d: &ObjectReader<'_>| match task {
            Role::Src => s.field_path(key),
            Role::Dest => d.field_path(key),
        };
    let Some(first) = first else {
        let (task, _) = candidates[0];
        let config = match task {
            Role::Src => s.path(),
            Role::Dest => d.path(),
        };
        let alternative = match role {
            Role::Src => "ConnectionConfig (or SrcConnectionConfig)",
            Role::Dest => "ConnectionConfig (or DestConnectionConfig on the Src task)",
        };
        diags.error(
            config,
            format!("the {role} task needs {alternative} with Host, Port, User and Password"),
        );
        return None;
    };
    for other in &rest {
        diags.error(
            &path_of(other, s, d),
            format!(
                "the {role} server is also given at {}; give it once",
                path_of(first, s, d)
            ),
        );
        // Reported above; marked read so it is not reported again as unknown.
        let _ = match other.0 {
            Role::Src => s.raw(other.1),
            Role::Dest => d.raw(other.1),
        };
    }
    let (task, key) = first;
    let config = match task {
        Role::Src => s,
        Role::Dest => d,
    };
    let connection = crate::connection::read_connection(config.object(key, diags)?, diags);
    connection.filter(|_| rest.is_empty())
}

/// `DestType` (later shape): only MySQL targets exist in dtle-rs.
fn read_dest_type<'a>(s: &mut ObjectReader<'a>, d: &mut ObjectReader<'a>, diags: &mut Diagnostics) {
    let config = pick(d, s, "DestType", diags);
    let path = config.field_path("DestType");
    match config.string("DestType", diags) {
        None => {}
        Some(t) if t.eq_ignore_ascii_case("mysql") => {}
        Some(t) if t.eq_ignore_ascii_case("kafka") => diags.error(
            &path,
            "Kafka targets are not supported by dtle-rs; only MySQL/MariaDB (DestType \"mysql\")",
        ),
        Some(t) => diags.error(&path, format!("unknown DestType {t:?}: expected \"mysql\"")),
    }
}

fn reject_unsupported(config: &mut ObjectReader<'_>, diags: &mut Diagnostics) {
    for (key, why) in UNSUPPORTED_FIELDS {
        let Some((value, path)) = config.raw(key) else {
            continue;
        };
        let set = match value {
            serde_json::Value::Bool(b) => *b,
            serde_json::Value::String(s) => !s.is_empty(),
            serde_json::Value::Object(m) => !m.is_empty(),
            _ => true,
        };
        if set {
            diags.error(&path, *why);
        }
    }
}

/// A positive setting where 0 or absence means dtle's default.
fn setting<'a>(
    owner: &mut ObjectReader<'a>,
    other: &mut ObjectReader<'a>,
    key: &str,
    max: u64,
    default: u64,
    diags: &mut Diagnostics,
) -> u64 {
    match pick(owner, other, key, diags).integer(key, 0, max, 0, diags) {
        0 => default,
        n => n,
    }
}

fn flag<'a>(
    owner: &mut ObjectReader<'a>,
    other: &mut ObjectReader<'a>,
    key: &str,
    default: bool,
    diags: &mut Diagnostics,
) -> bool {
    pick(owner, other, key, diags).bool(key, default, diags)
}

fn read_extract<'a>(
    s: &mut ObjectReader<'a>,
    d: &mut ObjectReader<'a>,
    diags: &mut Diagnostics,
) -> Option<ExtractConfig> {
    const GIB: u64 = 1 << 30;
    let before = diags.errors.len();
    let replicate_do_db = read_rules(
        pick(s, d, "ReplicateDoDb", diags),
        "ReplicateDoDb",
        RuleList::Do,
        diags,
    );
    let replicate_ignore_db = read_rules(
        pick(s, d, "ReplicateIgnoreDb", diags),
        "ReplicateIgnoreDb",
        RuleList::Ignore,
        diags,
    );
    let start = read_start(s, d, diags);
    let skip_incremental_copy = flag(s, d, "SkipIncrementalCopy", false, diags);
    if skip_incremental_copy && !matches!(start, Some(StartPosition::Snapshot) | None) {
        diags.error(
            &s.field_path("SkipIncrementalCopy"),
            "with Gtid, GtidStart, AutoGtid or BinlogFile there is no snapshot, so skipping the incremental copy leaves nothing to do",
        );
    }
    if flag(s, d, "BinlogRelay", false, diags) {
        diags.warning(
            &s.field_path("BinlogRelay"),
            "ignored: dtle-rs reads the binlog directly (dtle itself disabled BinlogRelay)",
        );
    }
    let sql_filter = read_sql_filter(pick(s, d, "SqlFilter", diags), diags);
    let expand_syntax_support = flag(s, d, "ExpandSyntaxSupport", false, diags);
    if expand_syntax_support {
        diags.warning(
            &s.field_path("ExpandSyntaxSupport"),
            "not supported yet: grants, procedures and functions are not replicated",
        );
    }
    let config = ExtractConfig {
        replicate_do_db,
        replicate_ignore_db,
        start: start.unwrap_or(StartPosition::Snapshot),
        chunk_size: setting(s, d, "ChunkSize", 10_000_000, 2000, diags),
        repl_chan_buffer_size: setting(s, d, "ReplChanBufferSize", 1 << 20, 32, diags),
        group_max_size: setting(s, d, "GroupMaxSize", GIB, 1, diags),
        group_timeout_ms: setting(s, d, "GroupTimeout", 3_600_000, 100, diags),
        drop_table_if_exists: flag(s, d, "DropTableIfExists", false, diags),
        skip_create_db_table: flag(s, d, "SkipCreateDbTable", false, diags),
        expand_syntax_support,
        skip_incremental_copy,
        skip_privilege_check: flag(s, d, "SkipPrivilegeCheck", false, diags),
        sql_filter,
        net_write_timeout_s: setting(s, d, "SlaveNetWriteTimeout", 31_536_000, 28_800, diags),
        dump_entry_limit: setting(s, d, "DumpEntryLimit", GIB, 64 << 20, diags),
    };
    (diags.errors.len() == before).then_some(config)
}

fn read_start<'a>(
    s: &mut ObjectReader<'a>,
    d: &mut ObjectReader<'a>,
    diags: &mut Diagnostics,
) -> Option<StartPosition> {
    let mut gtid_field = |key: &str, diags: &mut Diagnostics| {
        let config = pick(s, d, key, diags);
        let path = config.field_path(key);
        let text = config.string(key, diags).filter(|t| !t.trim().is_empty())?;
        match GtidSet::parse(&text) {
            Ok(set) => Some((set, path)),
            Err(err) => {
                diags.error(&path, format!("{text:?} is not a GTID set: {err}"));
                None
            }
        }
    };
    let gtid = gtid_field("Gtid", diags);
    let gtid_start = gtid_field("GtidStart", diags);
    let auto_path = s.field_path("AutoGtid");
    let auto = flag(s, d, "AutoGtid", false, diags);
    let file_config = pick(s, d, "BinlogFile", diags);
    let file_path = file_config.field_path("BinlogFile");
    let file = file_config
        .string("BinlogFile", diags)
        .map(|f| f.trim().to_owned())
        .filter(|f| !f.is_empty());
    let pos_config = pick(s, d, "BinlogPos", diags);
    let pos_path = pos_config.field_path("BinlogPos");
    let pos = pos_config.integer("BinlogPos", 0, u64::MAX, 0, diags);

    let mut ok = true;
    if auto && (gtid.is_some() || gtid_start.is_some() || file.is_some()) {
        diags.error(
            &auto_path,
            "AutoGtid starts at the source's current position, so Gtid, GtidStart and BinlogFile must be empty",
        );
        ok = false;
    }
    if let (Some(_), Some((_, path))) = (&gtid, &gtid_start) {
        diags.error(
            path,
            "GtidStart needs Gtid to be empty: Gtid is the set already executed, GtidStart the first transaction to read",
        );
        ok = false;
    }
    if file.is_some() && (gtid.is_some() || gtid_start.is_some()) {
        diags.error(
            &file_path,
            "give either a GTID (Gtid, GtidStart) or BinlogFile/BinlogPos as the starting point, not both",
        );
        ok = false;
    }
    if pos != 0 && file.is_none() {
        diags.error(&pos_path, "needs BinlogFile");
        ok = false;
    }
    if !ok {
        return None;
    }
    Some(match (gtid, gtid_start, auto, file) {
        (Some((set, _)), _, _, _) => StartPosition::AfterExecuted(set),
        (None, Some((set, _)), _, _) => StartPosition::FromGtid(set),
        (None, None, true, _) => StartPosition::Current,
        (None, None, false, Some(file)) => StartPosition::BinlogFile {
            file,
            pos: pos.max(4),
        },
        (None, None, false, None) => StartPosition::Snapshot,
    })
}

fn read_sql_filter(config: &mut ObjectReader<'_>, diags: &mut Diagnostics) -> SqlFilter {
    let path = config.field_path("SqlFilter");
    let words: BTreeSet<SqlFilterWord> = config
        .strings("SqlFilter", diags)
        .iter()
        .enumerate()
        .filter_map(|(i, word)| match word.parse::<SqlFilterWord>() {
            Ok(word) => Some(word),
            Err(err) => {
                diags.error(&path.index(i), format!("{err}"));
                None
            }
        })
        .collect();
    SqlFilter(words)
}

fn read_apply<'a>(
    d: &mut ObjectReader<'a>,
    s: &mut ObjectReader<'a>,
    diags: &mut Diagnostics,
) -> ApplyConfig {
    let retry_config = pick(d, s, "RetryTxLimit", diags);
    let retry_tx_limit = if retry_config.has("RetryTxLimit") {
        retry_config.integer("RetryTxLimit", 0, 1_000_000, 3, diags)
    } else {
        3
    };
    let parallel_workers = setting(d, s, "ParallelWorkers", 1024, 1, diags);
    if parallel_workers > 1 {
        diags.warning(
            &d.field_path("ParallelWorkers"),
            "accepted, but the applier uses one target connection: consecutive transactions are committed together in groups instead (docs/benchmarks.md)",
        );
    }
    ApplyConfig {
        parallel_workers,
        use_mysql_dependency: flag(d, s, "UseMySQLDependency", true, diags),
        dependency_history_size: setting(d, s, "DependencyHistorySize", 10_000_000, 2500, diags),
        foreign_key_checks: flag(d, s, "ForeignKeyChecks", true, diags),
        retry_tx_limit,
        set_gtid_next: flag(d, s, "SetGtidNext", false, diags),
        gtid_executed_retention: setting(d, s, "GtidExecutedRetention", 1 << 40, 100_000, diags),
    }
}
