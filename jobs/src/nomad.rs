//! Front-ends for Nomad jobs that run dtle tasks, as JSON (`{"Job": {"ID", "TaskGroups": [{"Name",
//! "Tasks": [{"Name", "Driver": "dtle", "Config": {...}}]}]}}`) or as HCL
//! (`job "x" { group "src" { task "src" { driver = "dtle" config { ... } } } ... }`).
//!
//! A task is the Src or the Dest task by its name, or else its group's name (dtle's
//! `TaskTypeFromString`: src/source, dst/dest/destination). Nomad's own stanzas (`restart`,
//! `reschedule`, `resources`, `constraint`, ...) are kept on the job for the orchestrator; a
//! constraint on `${node.unique.name}` or `${node.unique.id}` also pins the task in its
//! [`Placement`]. The HCL front-end converts each body into JSON values and then reads them exactly
//! like the JSON front-end, with paths in HCL's terms (`job["x"].group["src"].task["src"].config`).

use crate::assemble::{role_from_name, RawJob, RawTask};
use crate::diagnostic::{Diagnostics, Path};
use crate::read::{describe, ObjectReader};
use crate::spec::{Placement, Role};
use hcl::eval::{Context, Evaluate};
use serde_json::{Map, Value};

/// Nomad settings at each level, compared lower-case without underscores, in both the JSON API's
/// and HCL's spellings.
const NOMAD_JOB_KEYS: &[&str] = &[
    "type",
    "namespace",
    "priority",
    "allatonce",
    "constraint",
    "constraints",
    "affinity",
    "affinities",
    "spread",
    "spreads",
    "update",
    "multiregion",
    "periodic",
    "parameterized",
    "parameterizedjob",
    "reschedule",
    "migrate",
    "meta",
    "vaulttoken",
    "consultoken",
    "vaultnamespace",
    "consulnamespace",
    "nodepool",
    "ui",
    "stop",
    "status",
    "statusdescription",
    "createindex",
    "modifyindex",
    "jobmodifyindex",
    "version",
    "submittime",
    "stable",
    "dispatched",
    "payload",
    "nomadtokenid",
    "parentid",
];
const NOMAD_GROUP_KEYS: &[&str] = &[
    "count",
    "constraint",
    "constraints",
    "affinity",
    "affinities",
    "spread",
    "spreads",
    "restart",
    "restartpolicy",
    "reschedule",
    "reschedulepolicy",
    "migrate",
    "network",
    "networks",
    "service",
    "services",
    "volume",
    "volumes",
    "ephemeraldisk",
    "update",
    "meta",
    "shutdowndelay",
    "stopafterclientdisconnect",
    "maxclientdisconnect",
    "scaling",
    "consul",
    "disconnect",
    "preventreschedulesonlost",
];
const NOMAD_TASK_KEYS: &[&str] = &[
    "constraint",
    "constraints",
    "affinity",
    "affinities",
    "resources",
    "restart",
    "restartpolicy",
    "env",
    "service",
    "services",
    "vault",
    "template",
    "templates",
    "artifact",
    "artifacts",
    "leader",
    "killtimeout",
    "killsignal",
    "logs",
    "logconfig",
    "meta",
    "user",
    "lifecycle",
    "shutdowndelay",
    "kind",
    "identity",
    "identities",
    "volumemount",
    "volumemounts",
    "dispatchpayload",
    "csipluginconfig",
    "scaling",
];

/// A Nomad job, dialect-neutral: each level's settings with its groups or tasks taken out.
pub(crate) struct NomadJob {
    /// Written in HCL (paths and messages use HCL's words) rather than JSON.
    hcl: bool,
    id: Option<(String, Path)>,
    settings: (Map<String, Value>, Path),
    groups: Vec<NomadGroup>,
}

struct NomadGroup {
    name: Option<String>,
    settings: (Map<String, Value>, Path),
    tasks: Vec<NomadTask>,
}

struct NomadTask {
    name: Option<String>,
    settings: (Map<String, Value>, Path),
}

impl NomadJob {
    /// Splits a Nomad JSON job (the object under `"Job"`, or the bare job) into its levels.
    pub fn from_json(job: &Map<String, Value>, base: Path, diags: &mut Diagnostics) -> Self {
        let mut settings = job.clone();
        let id = take_string(&mut settings, "ID").map(|id| (id, base.key("ID")));
        let groups = take_objects(&mut settings, "TaskGroups", &base, diags)
            .into_iter()
            .map(|(mut group, path)| NomadGroup {
                name: take_string(&mut group, "Name"),
                tasks: take_objects(&mut group, "Tasks", &path, diags)
                    .into_iter()
                    .map(|(mut task, path)| NomadTask {
                        name: take_string(&mut task, "Name"),
                        settings: (task, path),
                    })
                    .collect(),
                settings: (group, path),
            })
            .collect();
        Self {
            hcl: false,
            id,
            settings: (settings, base),
            groups,
        }
    }

    /// Parses a Nomad HCL job file.
    ///
    /// # Errors
    /// The HCL parser's message when the text is not HCL.
    pub fn from_hcl(text: &str, diags: &mut Diagnostics) -> Result<Self, hcl::Error> {
        let body = hcl::parse(text)?;
        let mut jobs = body.blocks().filter(|b| b.identifier() == "job");
        let Some(job) = jobs.next() else {
            diags.error(
                &Path::root(),
                "no job block: expected job \"<name>\" { ... }",
            );
            return Ok(Self {
                hcl: true,
                id: None,
                settings: (Map::new(), Path::root()),
                groups: Vec::new(),
            });
        };
        for extra in jobs {
            diags.error(
                &Path::root()
                    .key("job")
                    .label(label(extra).unwrap_or_default()),
                "a second job block: give one job per file",
            );
        }
        for attr in body.attributes() {
            let path = Path::root().key(attr.key());
            diags.keep_unrecognised(
                &path,
                &expr_value(attr.expr()),
                "not part of a job; kept but not used",
            );
        }
        for block in body.blocks().filter(|b| b.identifier() != "job") {
            let path = Path::root().key(block.identifier());
            diags.keep_unrecognised(
                &path,
                &block_value(block),
                "not part of a job; kept but not used",
            );
        }

        let job_path = Path::root()
            .key("job")
            .label(label(job).unwrap_or_default());
        let id = match job.labels() {
            [id] => Some((id.as_str().to_owned(), job_path.clone())),
            _ => {
                diags.error(
                    &job_path,
                    "a job block needs exactly one label, its ID: job \"demo\" { ... }",
                );
                None
            }
        };
        let groups = job
            .body()
            .blocks()
            .filter(|b| b.identifier() == "group")
            .map(|group| {
                let path = job_path
                    .key("group")
                    .label(label(group).unwrap_or_default());
                let tasks = group
                    .body()
                    .blocks()
                    .filter(|b| b.identifier() == "task")
                    .map(|task| NomadTask {
                        name: label(task).map(str::to_owned),
                        settings: (
                            body_map(task.body(), &[]),
                            path.key("task").label(label(task).unwrap_or_default()),
                        ),
                    })
                    .collect();
                NomadGroup {
                    name: label(group).map(str::to_owned),
                    settings: (body_map(group.body(), &["task"]), path),
                    tasks,
                }
            })
            .collect();
        Ok(Self {
            hcl: true,
            id,
            settings: (body_map(job.body(), &["group"]), job_path),
            groups,
        })
    }

    /// Reads the job's levels into what [`crate::assemble`] needs. `empty` stands in for a task
    /// without a config.
    pub fn read<'a>(
        &'a self,
        empty: &'a Map<String, Value>,
        diags: &mut Diagnostics,
    ) -> RawJob<'a> {
        let (job_map, job_path) = &self.settings;
        let mut job = ObjectReader::new(job_map, job_path.clone());
        let name = job
            .string("Name", diags)
            .map(|n| (n, job.field_path("Name")));
        let datacenters = job.strings("Datacenters", diags);
        let region = job.string("Region", diags).filter(|r| !r.is_empty());
        let failover = job.bool("Failover", false, diags);
        if self.id.is_none() && !self.hcl {
            diags.error(&job_path.key("ID"), "missing: a Nomad job needs an ID");
        }
        let mut tasks = Vec::new();
        for group in &self.groups {
            let (group_map, group_path) = &group.settings;
            let group_reader = ObjectReader::new(group_map, group_path.clone());
            if group.tasks.is_empty() {
                diags.error(group_path, "a group without tasks: put the dtle task here");
            }
            let first = tasks.len();
            for task in &group.tasks {
                tasks.push(read_task(task, group.name.as_deref(), empty, diags));
            }
            // The group's role: its name's, else the one its tasks share.
            let mut roles = tasks[first..].iter().map(|t| t.role);
            let shared = roles
                .next()
                .flatten()
                .filter(|r| roles.all(|o| o == Some(*r)));
            let role = group.name.as_deref().and_then(role_from_name).or(shared);
            keep_settings(group_reader, NOMAD_GROUP_KEYS, role, diags);
        }
        let tasks_path = job_path.key(if self.hcl { "group" } else { "TaskGroups" });
        keep_settings(job, NOMAD_JOB_KEYS, None, diags);
        RawJob {
            id: self.id.clone(),
            name,
            failover,
            datacenters,
            region,
            tasks_path,
            tasks,
        }
    }
}

fn read_task<'a>(
    task: &'a NomadTask,
    group_name: Option<&str>,
    empty: &'a Map<String, Value>,
    diags: &mut Diagnostics,
) -> RawTask<'a> {
    let (map, path) = &task.settings;
    let mut r = ObjectReader::new(map, path.clone());
    let role = task
        .name
        .as_deref()
        .and_then(role_from_name)
        .or_else(|| group_name.and_then(role_from_name));
    if role.is_none() {
        diags.error(
            path,
            "cannot tell whether this is the Src or the Dest task: name the task (or its group) \"src\" or \"dest\"",
        );
    }
    let driver_path = r.field_path("Driver");
    match r.string("Driver", diags) {
        Some(d) if d == "dtle" => {}
        Some(d) => diags.error(
            &driver_path,
            format!("unknown driver {d:?}: expected \"dtle\""),
        ),
        None => diags.error(&driver_path, "missing: driver = \"dtle\""),
    }
    let placement = placement(&r);
    let config_path = r.field_path("Config");
    let config = r.object("Config", diags).unwrap_or_else(|| {
        if !r.has("Config") {
            diags.error(&config_path, "missing: the task's settings go here");
        }
        ObjectReader::new(empty, config_path)
    });
    keep_settings(r, NOMAD_TASK_KEYS, role, diags);
    RawTask {
        path: path.clone(),
        role,
        config,
        placement,
    }
}

/// Pins from constraints on the node's unique name or ID, in either spelling.
fn placement(task: &ObjectReader<'_>) -> Placement {
    let mut placement = Placement::default();
    let constraints = task
        .peek("Constraints")
        .or_else(|| task.peek("constraint"))
        .into_iter()
        .flat_map(|v| match v {
            Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        });
    for constraint in constraints {
        let field = |json: &str, hcl: &str| {
            constraint
                .get(json)
                .or_else(|| constraint.get(hcl))
                .and_then(Value::as_str)
        };
        let target = field("LTarget", "attribute");
        let operand = field("Operand", "operator").unwrap_or("=");
        let (Some(target), Some(value)) = (target, field("RTarget", "value")) else {
            continue;
        };
        if !matches!(operand, "=" | "==") {
            continue;
        }
        match target.trim() {
            "${node.unique.name}" => placement.node_name = Some(value.to_owned()),
            "${node.unique.id}" => placement.node_id = Some(value.to_owned()),
            _ => {}
        }
    }
    placement
}

/// Keeps what is left at one level: Nomad's own settings for the orchestrator (with the role of the
/// group or task they were written in), the rest as unknown.
fn keep_settings(
    r: ObjectReader<'_>,
    nomad_keys: &[&str],
    role: Option<Role>,
    diags: &mut Diagnostics,
) {
    for left in r.finish() {
        let normalised: String = left
            .key
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        if nomad_keys.contains(&normalised.as_str()) {
            diags.keep_orchestrator_setting(&left.path, &left.value, role);
        } else {
            diags.keep_unrecognised(&left.path, &left.value, "unknown field; kept but not used");
        }
    }
}

fn take(map: &mut Map<String, Value>, key: &str) -> Option<(String, Value)> {
    let k = map.keys().find(|k| k.eq_ignore_ascii_case(key))?.clone();
    map.shift_remove(&k).map(|v| (k, v))
}

/// Takes the list of objects under `key` out of `map`, each with its path.
fn take_objects(
    map: &mut Map<String, Value>,
    key: &str,
    base: &Path,
    diags: &mut Diagnostics,
) -> Vec<(Map<String, Value>, Path)> {
    match take(map, key) {
        Some((key, Value::Array(items))) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| {
                let path = base.key(&key).index(i);
                match item {
                    Value::Object(object) => Some((object, path)),
                    other => {
                        diags.error(
                            &path,
                            format!("expected an object, got {}", describe(&other)),
                        );
                        None
                    }
                }
            })
            .collect(),
        Some((key, other)) => {
            diags.error(
                &base.key(&key),
                format!("expected a list of objects, got {}", describe(&other)),
            );
            Vec::new()
        }
        None => Vec::new(),
    }
}

fn take_string(map: &mut Map<String, Value>, key: &str) -> Option<String> {
    match take(map, key)? {
        (_, Value::String(s)) if !s.is_empty() => Some(s),
        (k, other) if !other.is_null() => {
            // Not a string: put it back so it is reported as kept rather than lost.
            map.insert(k, other);
            None
        }
        _ => None,
    }
}

fn label(block: &hcl::Block) -> Option<&str> {
    block.labels().first().map(|l| l.as_str())
}

/// An HCL body as a JSON object: attributes by key, blocks as lists of objects (a labelled block
/// nests its body under its labels). Identifiers in `skip` are left out.
fn body_map(body: &hcl::Body, skip: &[&str]) -> Map<String, Value> {
    let mut map = Map::new();
    for attr in body.attributes() {
        map.insert(attr.key().to_owned(), expr_value(attr.expr()));
    }
    for block in body.blocks().filter(|b| !skip.contains(&b.identifier())) {
        let entry = map
            .entry(block.identifier().to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) => items.push(block_value(block)),
            // An attribute and a block of the same name: keep both, the block in a list.
            other => {
                let attr = other.take();
                *other = Value::Array(vec![attr, block_value(block)]);
            }
        }
    }
    map
}

fn block_value(block: &hcl::Block) -> Value {
    let mut value = Value::Object(body_map(block.body(), &[]));
    for label in block.labels().iter().rev() {
        let mut outer = Map::new();
        outer.insert(label.as_str().to_owned(), value);
        value = Value::Object(outer);
    }
    value
}

/// An HCL expression's value. Literals and arithmetic are evaluated; what needs Nomad's runtime
/// (`${node.unique.name}`, `${NOMAD_ALLOC_ID}`) stays as its text, as Nomad would receive it.
fn expr_value(expr: &hcl::Expression) -> Value {
    let value = expr
        .evaluate(&Context::new())
        .unwrap_or_else(|_| hcl::Value::from(expr.clone()));
    serde_json::to_value(value).unwrap_or(Value::Null)
}
