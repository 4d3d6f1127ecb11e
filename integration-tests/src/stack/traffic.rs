//! The client side: a plain HTTP/1.1 client (one connection per request, so each request's
//! outcome stands alone) and [`Traffic`], threads inside the client's namespace that send reads
//! (`GET /read`, idempotent) and writes (`POST /write?id=N`, N counting up) at the VIP without
//! pause, recording every request's start, end and outcome, and every write id that was
//! acknowledged (a 200 answer).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::vrrp::in_netns;

/// How long a request may take to connect, and then to be answered.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(8);

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// One request over a new connection (`Connection: close`); an error names what failed.
pub fn request(addr: SocketAddr, method: &str, path: &str) -> Result<Answer, String> {
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(|e| format!("socket options: {e}"))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: demo\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|e| format!("receive: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no complete answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    Ok(Answer {
        status,
        body: body.to_string(),
    })
}

/// What a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write(u64),
}

/// One request's record.
#[derive(Debug, Clone)]
pub struct Sample {
    pub kind: Kind,
    pub start: Instant,
    pub end: Instant,
    /// The answering app's name, or what went wrong.
    pub outcome: Result<String, String>,
}

/// Requests running from the client's namespace until [`Traffic::stop`] (or drop).
pub struct Traffic {
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Per thread, when its current request started.
    in_flight: Arc<Mutex<Vec<Option<Instant>>>>,
    acked: Arc<Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Traffic {
    /// `readers` threads of `GET /read` and one of `POST /write`, from namespace `ns` to `target`.
    pub fn start(ns: &str, target: SocketAddr, readers: usize) -> Traffic {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let in_flight = Arc::new(Mutex::new(vec![None; readers + 1]));
        let next_id = Arc::new(AtomicU64::new(1));
        let mut threads = Vec::new();
        for i in 0..=readers {
            let write = i == readers;
            let (ns, samples, acked, stop, next_id, in_flight) = (
                ns.to_string(),
                samples.clone(),
                acked.clone(),
                stop.clone(),
                next_id.clone(),
                in_flight.clone(),
            );
            threads.push(std::thread::spawn(move || {
                in_netns(&ns, move || {
                    while !stop.load(Ordering::Relaxed) {
                        let kind = if write {
                            Kind::Write(next_id.fetch_add(1, Ordering::Relaxed))
                        } else {
                            Kind::Read
                        };
                        in_flight.lock().expect("in flight")[i] = Some(Instant::now());
                        let sample = send(target, kind);
                        if let (Kind::Write(id), Ok(_)) = (sample.kind, &sample.outcome) {
                            acked.lock().expect("acked").push(id);
                        }
                        let failed = sample.outcome.is_err();
                        samples.lock().expect("samples").push(sample);
                        in_flight.lock().expect("in flight")[i] = None;
                        // A short pause: enough requests to time an outage to a few tens of
                        // milliseconds, few enough to leave the CPUs to the stack.
                        let pause = if failed { 5 } else { 15 };
                        std::thread::sleep(Duration::from_millis(pause));
                    }
                })
            }));
        }
        Traffic {
            samples,
            in_flight,
            acked,
            stop,
            threads,
        }
    }

    /// Every record so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    /// The write ids acknowledged so far.
    pub fn acked(&self) -> Vec<u64> {
        self.acked.lock().expect("acked").clone()
    }

    /// Waits until `n` more reads have succeeded (the traffic flows), at most `timeout`.
    pub fn wait_for_reads(&self, n: usize, timeout: Duration) {
        let from = Instant::now();
        crate::wait_until("reads to succeed through the VIP", timeout, || {
            let ok = self
                .samples()
                .iter()
                .filter(|s| s.start >= from && s.kind == Kind::Read && s.outcome.is_ok())
                .count();
            (ok >= n).then_some(())
        });
    }

    /// Whether a write started after `instant` is acknowledged within `timeout`.
    pub fn write_acked_after(&self, instant: Instant, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let acked = self.samples.lock().expect("samples").iter().any(|s| {
                matches!(s.kind, Kind::Write(_)) && s.start > instant && s.outcome.is_ok()
            });
            if acked {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every request started before `instant` has ended (and been recorded).
    pub fn wait_settled(&self, instant: Instant) {
        let timeout = CONNECT_TIMEOUT + ANSWER_TIMEOUT + Duration::from_secs(2);
        crate::wait_until("requests in flight to end", timeout, || {
            let in_flight = self.in_flight.lock().expect("in flight");
            in_flight
                .iter()
                .all(|started| !matches!(started, Some(s) if *s <= instant))
                .then_some(())
        });
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop();
    }
}

fn send(target: SocketAddr, kind: Kind) -> Sample {
    let start = Instant::now();
    let result = match kind {
        Kind::Read => request(target, "GET", "/read"),
        Kind::Write(id) => request(target, "POST", &format!("/write?id={id}")),
    };
    let outcome = match result {
        Ok(answer) if answer.status == 200 => Ok(app_name(&answer.body)),
        Ok(answer) => Err(format!("HTTP {}: {}", answer.status, answer.body.trim())),
        Err(e) => Err(e),
    };
    Sample {
        kind,
        start,
        end: Instant::now(),
        outcome,
    }
}

/// `"app":"app1"` out of the demo app's JSON answer.
fn app_name(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body.trim())
        .ok()
        .and_then(|v| v["app"].as_str().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}
