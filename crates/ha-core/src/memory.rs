//! Heap memory freed after a burst goes back to the system.
//!
//! glibc's allocator returns memory to the system only from the top of its heaps. A burst
//! (thousands of requests in flight at once, each with its buffers) leaves freed chunks
//! between the allocations that stay (the connections that remain open), and the process
//! keeps those pages for good: with 9500 idle keep-alive clients that had each sent one
//! request at once, proxyd held about 1.5 MB more than it used. Once a second the daemon
//! compares its resident anonymous memory with what its heap has handed out ([`held`]) and,
//! above [`HELD_LIMIT`] of difference, has the allocator release its free pages
//! (`malloc_trim`, which since glibc 2.8 also releases pages inside the heap).

use std::time::Duration;

/// Resident memory the heap does not use ([`held`]) the process may keep before the allocator
/// is asked to release it.
pub const HELD_LIMIT: usize = 4 << 20;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Checks once a second, on the calling runtime, for as long as it runs.
pub fn spawn_release() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(CHECK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tick.tick().await;
            release_if_held(HELD_LIMIT);
        }
    });
}

/// Memory the process keeps resident that its heap does not use, in bytes: its resident
/// anonymous memory (`RssAnon`) less what the allocator has handed out (0 where it cannot
/// tell). Mostly free heap chunks whose pages the allocator still holds; a few hundred KiB
/// of thread stacks besides. (The allocator's own count of free bytes does not drop when
/// their pages are released, so it cannot say whether a release is due.)
pub fn held() -> usize {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let resident = resident_anonymous();
        // SAFETY: mallinfo2 only reads glibc's allocator statistics, under its own locks.
        let info = unsafe { libc::mallinfo2() };
        resident.saturating_sub(info.uordblks + info.hblkhd)
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    0
}

/// The process's resident anonymous memory (`RssAnon` of `/proc/self/status`), in bytes; 0
/// when it cannot be read.
fn resident_anonymous() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .unwrap_or(0)
        * 1024
}

/// Releases the allocator's free pages to the system when the process holds more than
/// `limit` bytes resident that its heap does not use ([`held`]); whether it did.
pub fn release_if_held(limit: usize) -> bool {
    if held() <= limit {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of glibc's heaps, under its own locks.
    unsafe {
        libc::malloc_trim(0);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn memory_freed_between_live_allocations_goes_back_to_the_system() {
        // A thread of its own: its allocations come from one arena and no other test's.
        std::thread::spawn(|| {
            // 16 MiB in 4 KiB blocks; every eighth block stays, so the freed 14 MiB lie
            // between live blocks, where glibc alone never returns them.
            let mut blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 4096]).collect();
            let kept: Vec<Vec<u8>> = blocks
                .drain(..)
                .enumerate()
                .filter_map(|(i, b)| (i % 8 == 0).then_some(b))
                .collect();
            let held_before = held();
            assert!(held_before > 10 << 20, "resident and unused: {held_before}");
            let before = resident_anonymous();
            assert!(release_if_held(4 << 20));
            let after = resident_anonymous();
            assert!(
                before.saturating_sub(after) > 8 << 20,
                "{before} bytes resident before, {after} after"
            );
            // And the measure says so, so that the next check does not release again.
            let held_after = held();
            assert!(
                held_after + (8 << 20) < held_before,
                "{held_before} bytes held before, {held_after} after"
            );
            drop(kept);
        })
        .join()
        .expect("test thread");
    }
}
