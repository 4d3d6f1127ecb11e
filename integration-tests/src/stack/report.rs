//! What the client saw during one fault and its repair ([`Report`]), the rules it is judged by
//! ([`Report::violations`], see [`super::fault`]), and the table `make demo` prints.

use std::time::{Duration, Instant};

use super::fault::Fault;
use super::traffic::{Kind, Sample};

/// What the client saw during one fault and its repair.
#[derive(Debug, Clone)]
pub struct Report {
    pub fault: Fault,
    /// Which component was hit, e.g. `lb1`.
    pub target: String,
    /// From the fault to the other load balancer holding the VIP.
    pub vip_move: Option<Duration>,
    pub reads: usize,
    pub failed_reads: Vec<Sample>,
    /// Failed reads outside the VIP move window: each one breaks the rules.
    pub failed_reads_outside_window: Vec<Sample>,
    pub writes: usize,
    pub failed_writes: Vec<Sample>,
    /// What the client saw as the outage of reads: from the start of the first failed read to
    /// the start of the first read after it that succeeded (see [`outage`]).
    pub read_outage: Duration,
    pub write_outage: Duration,
    /// A write started after the repair was acknowledged within [`super::fault::RESUME_WITHIN`].
    pub writes_resumed: bool,
    /// Writes acknowledged so far, and those of them missing on the writer.
    pub acked_total: usize,
    pub lost_writes: Vec<u64>,
    /// The writer checked for the acknowledged writes.
    pub writer: String,
    /// `hactl status` of the nodes involved: before the fault, with the fault in place (just
    /// before the repair), and after the repair.
    pub hactl_before: Vec<(String, String)>,
    pub hactl_during: Vec<(String, String)>,
    pub hactl_after: Vec<(String, String)>,
}

impl Report {
    /// Every way this report breaks the rules (empty: the stack behaved).
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.failed_reads_outside_window {
            out.push(format!(
                "a read failed outside the VIP move window: {:?}",
                s.outcome
            ));
        }
        if !self.writes_resumed {
            out.push("writes did not work again after the fault".to_string());
        }
        if !self.lost_writes.is_empty() {
            out.push(format!(
                "acknowledged writes missing on the {}: {:?}",
                self.writer, self.lost_writes
            ));
        }
        out
    }

    /// One line of errors seen, the most frequent first, for the demo's output.
    pub fn error_summary(&self) -> String {
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for s in self.failed_reads.iter().chain(&self.failed_writes) {
            if let Err(e) = &s.outcome {
                let short: String = e.chars().take(70).collect();
                let kind = if matches!(s.kind, Kind::Read) {
                    "GET"
                } else {
                    "POST"
                };
                *counts.entry(format!("{kind} {short}")).or_default() += 1;
            }
        }
        let mut sorted: Vec<_> = counts.into_iter().collect();
        sorted.sort_by_key(|entry| std::cmp::Reverse(entry.1));
        sorted
            .iter()
            .take(4)
            .map(|(e, n)| format!("{n}× {e}"))
            .collect::<Vec<_>>()
            .join("\n      ")
    }
}

/// The time new requests were failing: the sum, over each run of failures, of the span from the
/// start of its first failed request to the start of the next request that succeeded (or the end
/// of the last failure, when none did). A request hung on a cut link until its timeout counts
/// only until other requests succeed again.
pub fn outage(samples: &[Sample]) -> Duration {
    let mut sorted: Vec<&Sample> = samples.iter().collect();
    sorted.sort_by_key(|s| s.start);
    let mut total = Duration::ZERO;
    let mut failing_since: Option<Instant> = None;
    for s in &sorted {
        match (&s.outcome, failing_since) {
            (Err(_), None) => failing_since = Some(s.start),
            (Ok(_), Some(since)) if s.start > since => {
                total += s.start - since;
                failing_since = None;
            }
            _ => {}
        }
    }
    if let Some(since) = failing_since {
        let last_end = sorted.iter().map(|s| s.end).max().unwrap_or(since);
        total += last_end.saturating_duration_since(since);
    }
    total
}

/// The table `make demo` prints, one row per fault.
pub fn table(reports: &[Report]) -> String {
    let ms = |d: Duration| format!("{:.2}s", d.as_secs_f64());
    let mut out = format!(
        "{:<38} {:>8} {:>10} {:>11} {:>11} {:>12} {:>10}  {}\n",
        "fault (target)",
        "VIP move",
        "GET outage",
        "GETs failed",
        "POST outage",
        "POSTs failed",
        "acked lost",
        "verdict"
    );
    for r in reports {
        let verdict = if !r.violations().is_empty() {
            "VIOLATION".to_string()
        } else if r.fault.moves_vip() {
            "ok: GETs failed only inside the VIP move".to_string()
        } else if r.fault == Fault::Primary {
            format!("ok: no GET failed, writes moved to the {}", r.writer)
        } else {
            "ok: no GET failed".to_string()
        };
        out += &format!(
            "{:<38} {:>8} {:>10} {:>11} {:>11} {:>12} {:>10}  {}\n",
            format!("{} ({})", r.fault.label(), r.target),
            r.vip_move.map(ms).unwrap_or_else(|| "-".into()),
            ms(r.read_outage),
            format!("{}/{}", r.failed_reads.len(), r.reads),
            ms(r.write_outage),
            format!("{}/{}", r.failed_writes.len(), r.writes),
            format!("{}/{}", r.lost_writes.len(), r.acked_total),
            verdict
        );
    }
    out
}
