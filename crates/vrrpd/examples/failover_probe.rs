//! The benchmark's two ends of a client-observed failover (scripts/bench/vrrp-failover.sh).
//!
//! `serve PORT NAME [HEALTH_SOCKET]`: a service on a load balancer node. It answers every TCP
//! connection with NAME, and (when given) `health` on a control socket the way our daemons
//! do, so vrrpd can track it. Killing it kills both, as when proxyd dies.
//!
//! `probe ADDR:PORT INTERVAL_MS DURATION_MS`: a client connecting every INTERVAL_MS for
//! DURATION_MS and printing the longest time without a successful answer (`outage_ms=`),
//! and who answered before and after it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() >= 3 => serve(&args[1], &args[2], args.get(3)),
        Some("probe") if args.len() == 4 => probe(&args[1], args[2].parse()?, args[3].parse()?),
        _ => Err("usage: failover_probe serve PORT NAME [HEALTH_SOCKET] | probe ADDR:PORT INTERVAL_MS DURATION_MS".into()),
    }
}

fn serve(
    port: &str,
    name: &str,
    health: Option<&String>,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(path) = health {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let Ok(mut writer) = stream.try_clone() else {
                        return;
                    };
                    for line in BufReader::new(stream).lines() {
                        if line.is_err() {
                            return;
                        }
                        let answer = b"{\"ok\":true,\"data\":{\"ready\":true}}\n";
                        if writer.write_all(answer).is_err() {
                            return;
                        }
                    }
                });
            }
        });
    }
    let listener = TcpListener::bind(format!("0.0.0.0:{port}"))?;
    for mut stream in listener.incoming().flatten() {
        let _ = stream.write_all(name.as_bytes());
    }
    Ok(())
}

fn probe(
    target: &str,
    interval_ms: u64,
    duration_ms: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = target.parse()?;
    let interval = Duration::from_millis(interval_ms);
    let start = Instant::now();
    let end = start + Duration::from_millis(duration_ms);
    let mut last_ok: Option<(Instant, String)> = None;
    let mut worst = (Duration::ZERO, String::new(), String::new());
    let mut successes = 0u64;
    while Instant::now() < end {
        let sent = Instant::now();
        if let Some(who) = ask(&addr) {
            let now = Instant::now();
            if let Some((previous, before)) = &last_ok {
                let gap = now.duration_since(*previous);
                if gap > worst.0 {
                    worst = (gap, before.clone(), who.clone());
                }
            }
            last_ok = Some((now, who));
            successes += 1;
        }
        let next = sent + interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    if let Some((previous, before)) = &last_ok {
        let tail = Instant::now().duration_since(*previous);
        if tail > worst.0 {
            worst = (tail, before.clone(), "nobody (not recovered)".into());
        }
    }
    println!(
        "outage_ms={} before={} after={} successes={successes}",
        worst.0.as_millis(),
        worst.1,
        worst.2
    );
    Ok(())
}

fn ask(addr: &SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(addr, Duration::from_millis(20)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    (!answer.is_empty()).then_some(answer)
}
