//! The access log: one line per HTTP request or TCP session ([`entry`]), text or JSON, to a
//! file or standard output, as `access_log` configures.
//!
//! Kept off the request path: a request hands its [`Entry`] to a bounded channel
//! (`try_send`, never waiting) and a writer task formats and writes the lines, flushing
//! when the channel is momentarily empty. When the writer falls behind and the channel is
//! full, lines are dropped and counted (`proxyd_access_log_dropped_total`) rather than
//! slowing requests down. With `enabled: false` (the default) there is no logger at all and
//! a request pays one `None` check.

pub mod entry;

use std::io::Write;

use ha_core::config::LogFormat;
use prometheus::IntCounter;
use tokio::sync::mpsc;
use tracing::warn;

pub use entry::Entry;

use crate::config;

/// Lines waiting for the writer before new ones are dropped.
const CHANNEL: usize = 8192;

/// A handle requests log through; cheap to clone.
#[derive(Debug, Clone)]
pub struct AccessLogger {
    lines: mpsc::Sender<Entry>,
    dropped: IntCounter,
}

impl AccessLogger {
    /// Queues a line; drops (and counts) it when the writer is behind.
    pub fn log(&self, entry: Entry) {
        if self.lines.try_send(entry).is_err() {
            self.dropped.inc();
        }
    }
}

/// Opens the destination and starts the writer; `None` when the log is off.
pub fn start(
    c: &config::AccessLog,
    dropped: IntCounter,
) -> Result<Option<AccessLogger>, std::io::Error> {
    if !c.enabled {
        return Ok(None);
    }
    let out: Box<dyn Write + Send> = if c.path.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&c.path)?,
        )
    };
    let (lines, receiver) = mpsc::channel(CHANNEL);
    let format = c.format;
    std::thread::Builder::new()
        .name("access-log".into())
        .spawn(move || write_lines(receiver, out, format))?;
    Ok(Some(AccessLogger { lines, dropped }))
}

/// The writer: a thread of its own (file writes block), until every logger is dropped.
fn write_lines(mut lines: mpsc::Receiver<Entry>, out: Box<dyn Write + Send>, format: LogFormat) {
    let mut out = std::io::BufWriter::new(out);
    while let Some(entry) = lines.blocking_recv() {
        let mut next = Some(entry);
        while let Some(entry) = next {
            let line = match format {
                LogFormat::Json => entry.json(),
                LogFormat::Text => entry.text(),
            };
            if let Err(e) = writeln!(out, "{line}") {
                warn!(error = %e, "access log write failed");
            }
            next = lines.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            warn!(error = %e, "access log flush failed");
        }
    }
}
