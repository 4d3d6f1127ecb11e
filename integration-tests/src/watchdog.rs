//! A test that hangs fails instead, and says where it was.
//!
//! Every helper that starts something a test could wait on forever (a temporary directory, a
//! daemon, a namespace LAN, a MariaDB topology, the root check) calls [`watch`], which registers
//! the calling test thread once. A thread of the test process checks every second; when a
//! registered test has run longer than the limit (`HA_TEST_WATCHDOG` in seconds, default
//! [`DEFAULT_LIMIT`]), it writes to the real stderr (not the captured one) which test it is, the
//! steps the test recorded with [`step`], every thread of the test process with its kernel state,
//! and every process on the machine with its state and command line (the daemons run in
//! namespaces), then ends the test process with a failure. Daemons started by the tests die with
//! it (`PR_SET_PDEATHSIG`), the MariaDB topology's own watchdog stops its servers, and the next
//! run removes the orphaned namespaces.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// The longest a test may run: several times the slowest test's usual time on a loaded machine.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(15 * 60);

type Steps = Arc<Mutex<Vec<(Duration, String)>>>;

struct Watched {
    test: String,
    since: Instant,
    /// Gone when the test's thread has ended.
    alive: Weak<()>,
    steps: Steps,
}

thread_local! {
    static CURRENT: RefCell<Option<(Arc<()>, Steps, Instant)>> = const { RefCell::new(None) };
}

fn registry() -> &'static Mutex<Vec<Watched>> {
    static REGISTRY: OnceLock<Mutex<Vec<Watched>>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let limit = std::env::var("HA_TEST_WATCHDOG")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_LIMIT);
        std::thread::Builder::new()
            .name("test-watchdog".into())
            .spawn(move || patrol(limit))
            .map_err(|e| eprintln!("the test watchdog did not start: {e}"))
            .ok();
        Mutex::new(Vec::new())
    })
}

/// Registers the calling thread's test with the watchdog (once; later calls do nothing).
pub fn watch() {
    let fresh = CURRENT.with(|c| c.borrow().is_none());
    if !fresh {
        return;
    }
    let token = Arc::new(());
    let steps: Steps = Arc::default();
    let since = Instant::now();
    let test = std::thread::current()
        .name()
        .unwrap_or("an unnamed test thread")
        .to_string();
    if let Ok(mut all) = registry().lock() {
        all.push(Watched {
            test,
            since,
            alive: Arc::downgrade(&token),
            steps: steps.clone(),
        });
    }
    CURRENT.with(|c| *c.borrow_mut() = Some((token, steps, since)));
}

/// Records what the calling test is about to do, shown if it hangs.
pub fn step(what: impl Into<String>) {
    watch();
    CURRENT.with(|c| {
        if let Some((_, steps, since)) = c.borrow().as_ref() {
            if let Ok(mut steps) = steps.lock() {
                steps.push((since.elapsed(), what.into()));
            }
        }
    });
}

fn patrol(limit: Duration) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let Ok(mut all) = registry().lock() else {
            return;
        };
        all.retain(|w| w.alive.strong_count() > 0);
        if let Some(hung) = all.iter().find(|w| w.since.elapsed() > limit) {
            let report = report(hung, limit);
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(report.as_bytes());
            let _ = err.flush();
            std::process::exit(101);
        }
    }
}

fn report(hung: &Watched, limit: Duration) -> String {
    let mut out = format!(
        "\n*** WATCHDOG: test `{}` has run for {:.0?} (limit {limit:?}, HA_TEST_WATCHDOG); ending the test process ***\n\nits steps:\n",
        hung.test,
        hung.since.elapsed()
    );
    if let Ok(steps) = hung.steps.lock() {
        for (at, what) in steps.iter() {
            out.push_str(&format!("  {at:>10.1?}  {what}\n"));
        }
    }
    out.push_str("\nthreads of the test process (name, state, kernel wait channel):\n");
    for task in dir_names("/proc/self/task") {
        let base = format!("/proc/self/task/{task}");
        out.push_str(&format!(
            "  {task} {} {} {}\n",
            read_trim(&format!("{base}/comm")),
            state_of(&read_trim(&format!("{base}/stat"))),
            read_trim(&format!("{base}/wchan"))
        ));
    }
    out.push_str("\nprocesses (pid, ppid, state, wait channel, command):\n");
    for pid in dir_names("/proc") {
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let stat = read_trim(&format!("/proc/{pid}/stat"));
        let cmdline: String = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace(['\0', '\n'], " "))
            .unwrap_or_default()
            .chars()
            .take(240)
            .collect();
        if cmdline.is_empty() {
            continue; // kernel threads
        }
        out.push_str(&format!(
            "  {pid} {} {} {} {}\n",
            ppid_of(&stat),
            state_of(&stat),
            read_trim(&format!("/proc/{pid}/wchan")),
            cmdline.trim_end()
        ));
    }
    out
}

fn dir_names(path: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|n| (n.len(), n.clone()));
    names
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The fields after the command name in /proc/…/stat: state first, then ppid.
fn after_comm(stat: &str) -> Vec<&str> {
    stat.rsplit_once(") ")
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

fn state_of(stat: &str) -> String {
    after_comm(stat).first().copied().unwrap_or("?").to_string()
}

fn ppid_of(stat: &str) -> String {
    after_comm(stat).get(1).copied().unwrap_or("?").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_is_watched_while_its_thread_lives_and_forgotten_after() {
        let seen = |name: &str| {
            registry()
                .lock()
                .map(|all| {
                    all.iter()
                        .any(|w| w.test == name && w.alive.strong_count() > 0)
                })
                .unwrap_or(false)
        };
        let worker = std::thread::Builder::new()
            .name("watched-thread".into())
            .spawn(|| {
                step("first");
                step("second");
                CURRENT.with(|c| {
                    let steps = c.borrow().as_ref().map(|(_, s, _)| s.clone());
                    let steps = steps.expect("registered");
                    let names: Vec<String> = steps
                        .lock()
                        .expect("steps")
                        .iter()
                        .map(|(_, w)| w.clone())
                        .collect();
                    assert_eq!(names, ["first", "second"]);
                });
                assert!(registry()
                    .lock()
                    .expect("registry")
                    .iter()
                    .any(|w| w.test == "watched-thread" && w.alive.strong_count() > 0));
            })
            .expect("spawn");
        worker.join().expect("the watched thread");
        assert!(!seen("watched-thread"));
    }

    #[test]
    fn the_report_names_the_test_its_steps_and_this_process() {
        let steps: Steps = Arc::new(Mutex::new(vec![(
            Duration::from_secs(2),
            "starting the stack".to_string(),
        )]));
        let token = Arc::new(());
        let watched = Watched {
            test: "some_test".into(),
            since: Instant::now(),
            alive: Arc::downgrade(&token),
            steps,
        };
        let text = report(&watched, Duration::from_secs(1));
        assert!(text.contains("`some_test`"), "{text}");
        assert!(text.contains("starting the stack"), "{text}");
        let me = std::process::id().to_string();
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(&me)),
            "{text}"
        );
    }
}
