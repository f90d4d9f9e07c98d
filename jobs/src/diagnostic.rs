//! Where a problem is in the user's job, and what it is.
//!
//! Every message the job model produces names a path into the document the user wrote, in the
//! notation the user would type to find it: `Tasks[0].Config.ConnectionConfig.Port` for dtle JSON,
//! `job["demo"].group["Src"].task["src"].config.ChunkSize` for a Nomad HCL job. Problems are
//! collected, never thrown, so that one pass reports all of them at once.

use crate::read::Leftover;
use crate::spec::{KeptField, Role};
use std::fmt;

/// One step of a [`Path`]: an object key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Key(String),
    /// A labelled HCL block, shown as `group["Src"]`.
    Label(String),
    Index(usize),
}

/// A location in the submitted document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(Vec<Segment>);

impl Path {
    /// The document's root (shown as `(job)`).
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by an object key.
    pub fn key(&self, key: &str) -> Self {
        self.with(Segment::Key(key.to_owned()))
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        self.with(Segment::Index(index))
    }

    /// This path extended by an HCL block label.
    pub fn label(&self, label: &str) -> Self {
        self.with(Segment::Label(label.to_owned()))
    }

    fn with(&self, segment: Segment) -> Self {
        let mut segments = self.0.clone();
        segments.push(segment);
        Self(segments)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(job)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Label(label) => write!(f, "[{label:?}]")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One problem found in a job, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// Where in the submitted document, e.g. `Tasks[0].Config.ConnectionConfig.Port`.
    pub path: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// What one pass over a job found: errors reject the job, warnings are reported beside it, and
/// fields the model does not interpret are kept here until they are put on the [`JobSpec`].
///
/// [`JobSpec`]: crate::JobSpec
#[derive(Debug, Default)]
pub(crate) struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Unknown or unused fields (each also has a warning).
    pub unrecognised: Vec<KeptField>,
    /// Orchestrator (Nomad) settings, kept for the orchestrator without a warning.
    pub orchestrator_settings: Vec<KeptField>,
}

impl Diagnostics {
    pub fn error(&mut self, path: &Path, message: impl Into<String>) {
        self.errors.push(Diagnostic {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn warning(&mut self, path: &Path, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Keeps a field the model does not use, with a warning saying so.
    pub fn keep_unrecognised(&mut self, path: &Path, value: &serde_json::Value, why: &str) {
        self.warning(path, why);
        self.unrecognised.push(KeptField {
            path: path.to_string(),
            value: value.clone(),
            role: None,
        });
    }

    /// Keeps fields nobody read: those named in `known` with the reason given there, the others
    /// as unknown.
    pub fn keep_leftovers(&mut self, leftovers: Vec<Leftover>, known: &[(&str, &str)]) {
        for left in leftovers {
            let why = known
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(&left.key))
                .map_or("unknown field; kept but not used", |(_, why)| *why);
            self.keep_unrecognised(&left.path, &left.value, why);
        }
    }

    /// As [`Self::keep_leftovers`], except that fields named in `read_only` (what the server
    /// prints and a user may send back: indexes, status, ...) are only warned about, with the
    /// reason given there, and not kept: the job they were posted with is the same job.
    pub fn skip_read_only(
        &mut self,
        leftovers: Vec<Leftover>,
        read_only: &[(&str, &str)],
        known: &[(&str, &str)],
    ) {
        for left in leftovers {
            match read_only
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(&left.key))
            {
                Some((_, why)) => self.warning(&left.path, *why),
                None => self.keep_leftovers(vec![left], known),
            }
        }
    }

    /// Keeps an orchestrator setting for the orchestrator, with the task it was written for.
    pub fn keep_orchestrator_setting(
        &mut self,
        path: &Path,
        value: &serde_json::Value,
        role: Option<Role>,
    ) {
        self.orchestrator_settings.push(KeptField {
            path: path.to_string(),
            value: value.clone(),
            role,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_as_the_user_would_type_them() {
        let port = Path::root()
            .key("Tasks")
            .index(0)
            .key("Config")
            .key("ConnectionConfig")
            .key("Port");
        assert_eq!(port.to_string(), "Tasks[0].Config.ConnectionConfig.Port");
        let hcl = Path::root()
            .key("job")
            .label("demo")
            .key("group")
            .label("Src");
        assert_eq!(hcl.to_string(), r#"job["demo"].group["Src"]"#);
        assert_eq!(Path::root().to_string(), "(job)");
    }
}
