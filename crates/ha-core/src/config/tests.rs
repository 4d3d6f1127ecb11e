//! Loading tests: every error reported at once, with key paths and line numbers.

use std::path::Path;

use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sample {
    #[serde(default)]
    control: ControlConfig,
    #[serde(default)]
    log: LogConfig,
    pools: std::collections::BTreeMap<String, Pool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pool {
    servers: Vec<Server>,
    #[serde(default)]
    interval: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Server {
    address: String,
    #[serde(default)]
    weight: Option<u32>,
}

impl Validate for Sample {
    fn validate(&self, problems: &mut Problems) {
        self.control.validate("control", problems);
        self.log.validate("log", problems);
        for (name, pool) in &self.pools {
            if pool.interval.is_some_and(|d| d.get().is_zero()) {
                problems.at(
                    format!("pools.{name}.interval"),
                    "interval must not be zero",
                );
            }
            for (i, s) in pool.servers.iter().enumerate() {
                if s.address.is_empty() {
                    problems.at(
                        format!("pools.{name}.servers[{i}].address"),
                        "address must not be empty",
                    );
                }
                if s.weight == Some(0) {
                    problems.at(
                        format!("pools.{name}.servers[{i}].weight"),
                        "weight must be at least 1",
                    );
                }
            }
        }
    }
}

fn check(text: &str) -> Result<Sample, ConfigErrors> {
    parse::<Sample>(Path::new("test.yaml"), text)
}

#[test]
fn good_file_parses() {
    let s =
        check("pools:\n  app:\n    servers:\n      - { address: a, weight: 2 }\n").expect("valid");
    assert_eq!(s.pools["app"].servers[0].weight, Some(2));
}

#[test]
fn three_mistakes_are_all_reported_with_lines() {
    let text = "\
log:
  level: loud
pools:
  app:
    interval: 5
    servers:
      - { address: a, wieght: 2 }
      - { address: b, weight: 0 }
";
    let errors = check(text).expect_err("three mistakes").0;
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 4, "{lines:#?}");
    let find = |path: &str| {
        errors
            .iter()
            .find(|e| e.path.to_string() == path)
            .unwrap_or_else(|| panic!("no error at {path}: {lines:#?}"))
    };
    assert_eq!(find("log.level").position.map(|p| p.line), Some(2));
    assert_eq!(find("pools.app.interval").position.map(|p| p.line), Some(5));
    assert_eq!(
        find("pools.app.servers[0].wieght").position.map(|p| p.line),
        Some(7)
    );
    assert_eq!(
        find("pools.app.servers[1].weight").position.map(|p| p.line),
        Some(8)
    );
    assert!(
        lines[0].starts_with("test.yaml:2:3: log.level: invalid level"),
        "{lines:#?}"
    );
}

#[test]
fn removed_sequence_items_keep_original_indexes() {
    let text =
        "pools:\n  app:\n    servers:\n      - { weight: 1 }\n      - { address: b, weight: 0 }\n";
    let errors = check(text).expect_err("two mistakes").0;
    let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
    assert_eq!(
        paths,
        vec!["pools.app.servers[0]", "pools.app.servers[1].weight"],
        "{errors:#?}"
    );
}

#[test]
fn syntax_error_has_a_line() {
    let errors = check("pools: [\n").expect_err("syntax").0;
    assert_eq!(errors.len(), 1);
    assert!(errors[0].position.is_some());
}
