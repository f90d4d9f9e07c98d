//! From what a front-end found (a name, some tasks with their configs) to a [`JobSpec`].
//!
//! Front-ends (dtle JSON, Nomad JSON, Nomad HCL) only know their own document's structure; the
//! rules every job obeys live here: one Src and one Dest task, a usable name, and the task configs
//! read by [`crate::task_config`].

use crate::diagnostic::{Diagnostics, Path};
use crate::read::ObjectReader;
use crate::spec::{JobSpec, Placement, Role};
use crate::task_config::{read_tasks, TaskInput};

/// Longest job name dtle accepts.
pub const MAX_NAME_LEN: usize = 64;

/// A job as a front-end found it.
pub(crate) struct RawJob<'a> {
    /// `ID` and where it was.
    pub id: Option<(String, Path)>,
    /// `Name` and where it was.
    pub name: Option<(String, Path)>,
    pub failover: bool,
    pub datacenters: Vec<String>,
    pub region: Option<String>,
    /// Where the tasks are listed, for "no Src task" messages.
    pub tasks_path: Path,
    pub tasks: Vec<RawTask<'a>>,
}

/// One task as a front-end found it.
pub(crate) struct RawTask<'a> {
    /// Where the task is, e.g. `Tasks[0]`.
    pub path: Path,
    /// `None` when the front-end could not tell (and reported it).
    pub role: Option<Role>,
    pub config: ObjectReader<'a>,
    pub placement: Placement,
}

/// Builds the job, or `None` when any error was reported.
pub(crate) fn assemble(raw: RawJob<'_>, diags: &mut Diagnostics) -> Option<JobSpec> {
    let RawJob {
        id,
        name,
        failover,
        datacenters,
        region,
        tasks_path,
        tasks,
    } = raw;
    for (value, path) in id.iter().chain(name.iter()) {
        check_name(value, path, diags);
    }
    let name = match (&name, &id) {
        (Some((name, _)), _) | (None, Some((name, _))) => Some(name.clone()),
        (None, None) => {
            diags.error(&Path::root().key("Name"), "missing: a job needs a Name");
            None
        }
    };

    let mut src: Option<RawTask<'_>> = None;
    let mut dest: Option<RawTask<'_>> = None;
    for task in tasks {
        let Some(role) = task.role else { continue };
        let slot = match role {
            Role::Src => &mut src,
            Role::Dest => &mut dest,
        };
        match slot {
            Some(first) => diags.error(
                &task.path,
                format!(
                    "a second {role} task (the first is {}): a job has exactly one Src and one Dest task",
                    first.path
                ),
            ),
            None => *slot = Some(task),
        }
    }
    for (role, slot) in [(Role::Src, &src), (Role::Dest, &dest)] {
        if slot.is_none() {
            diags.error(
                &tasks_path,
                format!("no {role} task: a job needs one Src and one Dest task"),
            );
        }
    }
    let (src, dest) = (src?, dest?);
    let tasks = read_tasks(
        TaskInput {
            config: src.config,
            placement: src.placement,
        },
        TaskInput {
            config: dest.config,
            placement: dest.placement,
        },
        diags,
    );
    if !diags.errors.is_empty() {
        return None;
    }
    let (src, dest) = tasks?;
    let name = name?;
    Some(JobSpec {
        id: id.map(|(id, _)| id).unwrap_or_else(|| name.clone()),
        name,
        failover,
        datacenters: if datacenters.is_empty() {
            vec!["dc1".to_owned()]
        } else {
            datacenters
        },
        region: region.unwrap_or_else(|| "global".to_owned()),
        src,
        dest,
        orchestrator_settings: std::mem::take(&mut diags.orchestrator_settings),
        unrecognised: std::mem::take(&mut diags.unrecognised),
    })
}

/// Checks a job ID given outside the document (the path of `PUT /v1/job/{ID}`) by the rules
/// names and IDs follow.
///
/// # Errors
/// What is wrong with it.
pub fn check_id(id: &str) -> Result<(), String> {
    let mut diags = Diagnostics::default();
    check_name(id, &Path::root().key("ID"), &mut diags);
    match diags.errors.first() {
        Some(error) => Err(error.message.clone()),
        None => Ok(()),
    }
}

/// Job names and IDs become NATS subject tokens and keys of the target's position table.
fn check_name(value: &str, path: &Path, diags: &mut Diagnostics) {
    if value.is_empty() {
        diags.error(path, "must not be empty");
        return;
    }
    let length = value.chars().count();
    if length > MAX_NAME_LEN {
        diags.error(
            path,
            format!("{length} characters; at most {MAX_NAME_LEN} are allowed"),
        );
    }
    let bad: Vec<char> = value
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .collect();
    if let Some(c) = bad.first() {
        diags.error(
            path,
            format!(
                "{value:?} contains {c:?}: use only letters, digits, '_' and '-' (the name is part of NATS subjects and SQL keys)"
            ),
        );
    }
}

/// dtle's task-type spellings (`TaskTypeFromString`): src/source, dst/dest/destination, any case.
pub fn role_from_name(name: &str) -> Option<Role> {
    match name.trim().to_ascii_lowercase().as_str() {
        "src" | "source" => Some(Role::Src),
        "dst" | "dest" | "destination" => Some(Role::Dest),
        _ => None,
    }
}
