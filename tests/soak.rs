//! The soak, run on demand by `ci/soak` (ignored in the normal suite):
//! 100,000 connections at concurrency 32 against one server running
//! `true`, then echo connections with payloads against one running `cat`,
//! each answer checked byte for byte. Before and after each run: the
//! server's descriptors, RSS, live children and zombies. Any failed
//! connection, any difference in descriptors or children, or RSS growth
//! beyond page-level noise fails it. Bounded: it gives up after
//! SOAK_DEADLINE seconds (default 600).
//! It reads /proc and skips, saying so, on systems without it.

mod common;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::{children_of, eventually, open_fds, Server};

const CONCURRENCY: usize = 32;
/// RSS may move by a few pages (allocator, stack, page cache of the
/// binary). A leak of even one small allocation per connection would show
/// as megabytes over 100,000 connections.
const RSS_NOISE_KIB: u64 = 256;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Figures {
    fds: usize,
    rss_kib: u64,
    live_children: usize,
    zombies: usize,
    cpu_ticks: u64,
}

fn figures(pid: i32) -> Figures {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    let kids = children_of(pid);
    let zombies = kids.iter().filter(|&&k| !common::alive(k)).count();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    Figures {
        fds: open_fds(pid).len(),
        rss_kib,
        live_children: kids.len() - zombies,
        zombies,
        cpu_ticks: f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap(),
    }
}

/// Waits (boundedly) until the server has no child left, then measures.
fn settled(server: &Server) -> Figures {
    eventually("every child reaped", || {
        children_of(server.pid()).is_empty()
    });
    figures(server.pid())
}

fn report(what: &str, before: Figures, after: Figures, n: usize, failed: usize, secs: f64) {
    // SAFETY: sysconf only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    println!("soak: {what}");
    println!(
        "  connections {n}, failed {failed}, {secs:.1} s, {:.0} connections/s, server CPU {:.1} s",
        n as f64 / secs,
        (after.cpu_ticks - before.cpu_ticks) as f64 / hz
    );
    println!("  {:<14} {:>10} {:>10}", "", "before", "after");
    println!(
        "  {:<14} {:>10} {:>10}",
        "descriptors", before.fds, after.fds
    );
    println!(
        "  {:<14} {:>10} {:>10}",
        "RSS (KiB)", before.rss_kib, after.rss_kib
    );
    println!(
        "  {:<14} {:>10} {:>10}",
        "live children", before.live_children, after.live_children
    );
    println!(
        "  {:<14} {:>10} {:>10}",
        "zombies", before.zombies, after.zombies
    );
}

fn check_no_growth(what: &str, before: Figures, after: Figures, failed: usize) {
    assert_eq!(failed, 0, "{what}: failed connections");
    assert_eq!(after.fds, before.fds, "{what}: descriptor count changed");
    assert_eq!(after.live_children, 0, "{what}: children left");
    assert_eq!(after.zombies, 0, "{what}: zombies left");
    assert!(
        after.rss_kib <= before.rss_kib + RSS_NOISE_KIB,
        "{what}: RSS grew from {} KiB to {} KiB",
        before.rss_kib,
        after.rss_kib
    );
}

/// Runs `n` connections over `CONCURRENCY` threads; `one(i)` makes the
/// i-th and says whether it succeeded. Returns (failures, seconds).
fn drive(n: usize, deadline: Instant, one: impl Fn(usize) -> bool + Sync) -> (usize, f64) {
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(0);
    let t0 = Instant::now();
    thread::scope(|s| {
        for _ in 0..CONCURRENCY {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                assert!(Instant::now() < deadline, "soak deadline passed");
                if !one(i) {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (failed.into_inner(), t0.elapsed().as_secs_f64())
}

/// A payload for connection `i`: sizes from 0 to 256 KiB, bytes that are
/// not a repeated pattern.
fn payload(i: usize) -> Vec<u8> {
    const SIZES: [usize; 8] = [0, 1, 100, 4095, 4096, 65_537, 200_000, 262_144];
    let len = SIZES[i % SIZES.len()];
    let mut x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
#[ignore = "long: run by ci/soak"]
fn soak() {
    if common::skip_unless_procfs("soak") {
        return;
    }
    let n = env_number("SOAK_CONNECTIONS", 100_000);
    let echoes = env_number("SOAK_ECHOES", 10_000);
    let deadline = Instant::now() + Duration::from_secs(env_number("SOAK_DEADLINE", 600) as u64);

    // Phase 1: many short connections.
    let server = Server::start(&["-c", "40"], &["true"]);
    let path = server.path.clone();
    // Warm up, so that "before" is the steady state, not start-up.
    let (f, _) = drive(1000, deadline, |_| common::request(&path, b"").is_empty());
    assert_eq!(f, 0, "warm-up failed");
    let before = settled(&server);
    let (failed, secs) = drive(n, deadline, |_| {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&path) else {
            return false;
        };
        s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).is_ok() && out.is_empty()
    });
    let after = settled(&server);
    report("`true`, no payload", before, after, n, failed, secs);
    check_no_growth("phase 1", before, after, failed);
    assert!(
        server.lines().is_empty(),
        "no warning at the default verbosity: {:#?}",
        server.lines()
    );
    drop(server);

    // Phase 2: echo connections with payloads, checked byte for byte.
    let server = Server::start(&["-c", "40"], &["cat"]);
    let path = server.path.clone();
    let (f, _) = drive(200, deadline, |i| {
        common::request(&path, &payload(i)) == payload(i)
    });
    assert_eq!(f, 0, "warm-up failed");
    let before = settled(&server);
    let bytes = AtomicUsize::new(0);
    let (failed, secs) = drive(echoes, deadline, |i| {
        let data = payload(i);
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&path) else {
            return false;
        };
        s.set_read_timeout(Some(common::TIMEOUT)).unwrap();
        s.set_write_timeout(Some(common::TIMEOUT)).unwrap();
        let mut w = s.try_clone().unwrap();
        // Write and read at once: cat answers while it reads.
        let echoed = thread::scope(|sc| {
            let writer = sc.spawn(|| {
                let ok = w.write_all(&data).is_ok();
                let _ = w.shutdown(std::net::Shutdown::Write);
                ok
            });
            let mut out = Vec::with_capacity(data.len());
            let read_ok = s.read_to_end(&mut out).is_ok();
            writer.join().unwrap() && read_ok && out == data
        });
        if echoed {
            bytes.fetch_add(data.len(), Ordering::Relaxed);
        }
        echoed
    });
    let after = settled(&server);
    report(
        &format!(
            "`cat`, payloads 0 B to 256 KiB, {:.1} MiB echoed and checked",
            bytes.into_inner() as f64 / 1048576.0
        ),
        before,
        after,
        echoes,
        failed,
        secs,
    );
    check_no_growth("phase 2", before, after, failed);
    assert!(
        server.lines().is_empty(),
        "no warning at the default verbosity: {:#?}",
        server.lines()
    );
}
