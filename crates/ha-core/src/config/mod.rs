//! Configuration loading: one YAML file per daemon, parsed into typed structs, then validated,
//! with every error reported at once and each one naming the file, the key path and the line.
//!
//! Parsing is done in two passes over one tree. serde stops at the first structural error, so
//! [`collect`] records it, removes the offending node from the tree and parses again, until the
//! tree parses; then [`Validate`] runs the daemon's semantic checks on the result. The operator
//! gets everything wrong with the file in one `--check`, like `nginx -t` but complete.

mod collect;
mod path;
mod positions;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

pub use path::{KeyPath, Segment};
pub use positions::{Position, Positions};
pub use types::{
    parse_duration, ControlConfig, Duration, LogConfig, LogFormat, MetricsConfig, Workers,
};

/// One thing wrong with a configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub path: KeyPath,
    pub position: Option<Position>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": {}: {}", self.path, self.message)
    }
}

/// Everything wrong with a configuration file, in document order.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Semantic problems found after parsing, each at a key path.
#[derive(Debug, Default)]
pub struct Problems {
    found: Vec<(KeyPath, String)>,
}

impl Problems {
    /// Records a problem at `path` (display form, e.g. `pools.app.servers[1].address`).
    pub fn at(&mut self, path: impl AsRef<str>, message: impl Into<String>) {
        self.found
            .push((KeyPath::parse(path.as_ref()), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn into_inner(self) -> Vec<(KeyPath, String)> {
        self.found
    }
}

/// The semantic checks of a configuration, run after it parsed.
pub trait Validate {
    fn validate(&self, problems: &mut Problems);
}

/// Reads, parses and validates the file at `file`.
pub fn load<T: DeserializeOwned + Validate>(file: &Path) -> Result<T, ConfigErrors> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_path_buf(),
            path: KeyPath::root(),
            position: None,
            message: format!("cannot read file: {e}"),
        }])
    })?;
    parse(file, &text)
}

/// Parses and validates `text`, which came from `file` (named in errors only).
pub fn parse<T: DeserializeOwned + Validate>(file: &Path, text: &str) -> Result<T, ConfigErrors> {
    let error = |path: KeyPath, position: Option<Position>, message: String| ConfigError {
        file: file.to_path_buf(),
        path,
        position,
        message,
    };
    let tree: serde_yaml::Value = match serde_yaml::from_str(text) {
        Ok(serde_yaml::Value::Null) => serde_yaml::Value::Mapping(Default::default()),
        Ok(v) => v,
        Err(e) => {
            let position = e.location().map(|l| Position {
                line: l.line(),
                column: l.column(),
            });
            return Err(ConfigErrors(vec![error(
                KeyPath::root(),
                position,
                e.to_string(),
            )]));
        }
    };
    let positions = Positions::scan(text);
    let outcome = collect::deserialize_all::<T>(tree);
    let mut errors: Vec<ConfigError> = outcome
        .errors
        .into_iter()
        .map(|(path, message)| error(path.clone(), positions.find(&path), message))
        .collect();
    if let Some(config) = &outcome.value {
        let mut problems = Problems::default();
        config.validate(&mut problems);
        for (path, message) in problems.into_inner() {
            let original = outcome.removed.to_original(&path);
            errors.push(error(original.clone(), positions.find(&original), message));
        }
    }
    if errors.is_empty() {
        if let Some(config) = outcome.value {
            return Ok(config);
        }
        errors.push(error(
            KeyPath::root(),
            None,
            "configuration could not be read".into(),
        ));
    }
    errors.sort_by_key(|e| {
        e.position
            .map(|p| (p.line, p.column))
            .unwrap_or((usize::MAX, 0))
    });
    Err(ConfigErrors(errors))
}

#[cfg(test)]
mod tests;
