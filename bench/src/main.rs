//! A small load client for benchmarking a UCSPI Unix-socket super-server
//! (ours and the C s6-ipcserver alike), plus the spawn floor: what
//! `posix_spawn` + `waitpid` of `/bin/true` costs with no socket at all.
//! Every mode prints one line of `key value` pairs for `ci/bench` to parse.

use std::ffi::{CString, OsString};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: s6-ipcserver-bench load SOCKET [-c CONCURRENCY] [-d SECONDS | -n COUNT] [-p BYTES]
       s6-ipcserver-bench floor [-c CONCURRENCY] [-d SECONDS]
       s6-ipcserver-bench first SOCKET [-r REPEAT] -- SERVER ARGS...
       s6-ipcserver-bench hold SOCKET [-n COUNT] [-t SECONDS]

load   connect, write the payload and half-close, read to EOF, repeatedly;
       prints connections/s and latency (connect to EOF) percentiles.
floor  posix_spawn + waitpid of /bin/true, no socket; prints spawns/s and
       the CPU time each spawn costs this process (children not included).
first  start the server, connect until a connection is served (read to
       EOF); prints the median time from start to that first connection.
hold   open COUNT connections, write a byte and read it back on each
       (the server's prog must echo, e.g. cat), print 'ready', then keep
       them open for SECONDS (or until stdin closes), and exit.";

struct Opts {
    socket: Option<OsString>,
    concurrency: usize,
    duration: Duration,
    count: Option<u64>,
    payload: usize,
    repeat: usize,
    server: Vec<OsString>,
}

fn parse(args: &[OsString]) -> Result<Opts, String> {
    let mut o = Opts {
        socket: None,
        concurrency: 1,
        duration: Duration::from_secs(3),
        count: None,
        payload: 0,
        repeat: 5,
        server: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str().ok_or("arguments must be UTF-8")?;
        let mut value = |name: &str| -> Result<f64, String> {
            it.next()
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|v| *v >= 0.0)
                .ok_or(format!("{name} needs a non-negative number"))
        };
        match a {
            "-c" => o.concurrency = (value("-c")? as usize).max(1),
            "-d" | "-t" => o.duration = Duration::from_secs_f64(value(a)?),
            "-n" => o.count = Some(value("-n")? as u64),
            "-p" => o.payload = value("-p")? as usize,
            "-r" => o.repeat = (value("-r")? as usize).max(1),
            "--" => {
                o.server = it.cloned().collect();
                break;
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ if o.socket.is_none() => o.socket = Some(a.into()),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(mode) = args.first().and_then(|m| m.to_str()) else {
        eprintln!("{USAGE}");
        return ExitCode::from(100);
    };
    let opts = match parse(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("s6-ipcserver-bench: {e}\n{USAGE}");
            return ExitCode::from(100);
        }
    };
    let need_socket = mode != "floor";
    if need_socket && opts.socket.is_none() {
        eprintln!("s6-ipcserver-bench: {mode} needs a SOCKET\n{USAGE}");
        return ExitCode::from(100);
    }
    let result = match mode {
        "load" => load(&opts),
        "floor" => floor(&opts),
        "first" => first(&opts),
        "hold" => hold(&opts),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(100);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s6-ipcserver-bench: {mode}: {e}");
            ExitCode::from(111)
        }
    }
}

fn socket_of(o: &Opts) -> &OsString {
    // main() checked that every mode but floor has a socket.
    o.socket.as_ref().expect("a socket path")
}

/// The value at quantile `q` of sorted `v`, or 0 when empty.
fn quantile(v: &[u32], q: f64) -> u32 {
    if v.is_empty() {
        return 0;
    }
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// One connection: connect, write, half-close, read to EOF. Returns the
/// number of bytes read.
fn one(path: &OsString, payload: &[u8], buf: &mut [u8]) -> io::Result<usize> {
    let mut s = UnixStream::connect(path)?;
    // A server that never closes must not hang the benchmark.
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    if !payload.is_empty() {
        s.write_all(payload)?;
    }
    // Half-close even without a payload, so a prog that reads stdin (cat)
    // sees EOF at once.
    s.shutdown(Shutdown::Write)?;
    let mut total = 0;
    loop {
        match s.read(buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn load(o: &Opts) -> io::Result<()> {
    let path = socket_of(o).clone();
    let payload = vec![b'x'; o.payload];
    let issued = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let short = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(o.concurrency + 1));
    let mut workers = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        let (path, payload) = (path.clone(), payload.clone());
        let (issued, stop, errors, short, start) = (
            issued.clone(),
            stop.clone(),
            errors.clone(),
            short.clone(),
            start.clone(),
        );
        let count = o.count;
        workers.push(thread::spawn(move || {
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut buf = vec![0u8; 4096];
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                if let Some(n) = count {
                    if issued.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                }
                let t = Instant::now();
                match one(&path, &payload, &mut buf) {
                    Ok(n) => {
                        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        if n < payload.len() && !payload.is_empty() {
                            short.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            lat
        }));
    }
    start.wait();
    let t0 = Instant::now();
    if o.count.is_none() {
        thread::sleep(o.duration);
        stop.store(true, Ordering::Relaxed);
    }
    let mut lat = Vec::new();
    for w in workers {
        lat.extend(
            w.join()
                .map_err(|_| io::Error::other("a worker panicked"))?,
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    lat.sort_unstable();
    println!(
        "conns {} secs {:.3} cps {:.1} p50_us {} p90_us {} p99_us {} max_us {} errors {} short {}",
        lat.len(),
        secs,
        lat.len() as f64 / secs,
        quantile(&lat, 0.50),
        quantile(&lat, 0.90),
        quantile(&lat, 0.99),
        quantile(&lat, 1.0),
        errors.load(Ordering::Relaxed),
        short.load(Ordering::Relaxed),
    );
    Ok(())
}

extern "C" {
    static environ: *const *mut libc::c_char;
    /// POSIX's posix_spawn, declared here because the libc crate lacks it
    /// on some systems (Android). File actions and attributes are only
    /// ever null, so their types do not matter.
    fn posix_spawn(
        pid: *mut libc::pid_t,
        path: *const libc::c_char,
        file_actions: *const libc::c_void,
        attrp: *const libc::c_void,
        argv: *const *mut libc::c_char,
        envp: *const *mut libc::c_char,
    ) -> libc::c_int;
}

/// posix_spawn + waitpid of /bin/true, the least a super-server can pay per
/// connection.
fn floor(o: &Opts) -> io::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(o.concurrency + 1));
    let mut workers = Vec::with_capacity(o.concurrency);
    for _ in 0..o.concurrency {
        let (stop, start) = (stop.clone(), start.clone());
        workers.push(thread::spawn(move || -> io::Result<u64> {
            let prog = CString::new("/bin/true").map_err(io::Error::other)?;
            let argv = [prog.as_ptr() as *mut libc::c_char, std::ptr::null_mut()];
            let mut n = 0u64;
            start.wait();
            while !stop.load(Ordering::Relaxed) {
                let mut pid: libc::pid_t = 0;
                // SAFETY: `pid` is writable, `prog` and `argv` are live and
                // null-terminated; null file actions and attributes are
                // allowed; `environ` is the process's environment.
                let r = unsafe {
                    posix_spawn(
                        &mut pid,
                        prog.as_ptr(),
                        std::ptr::null(),
                        std::ptr::null(),
                        argv.as_ptr(),
                        environ,
                    )
                };
                if r != 0 {
                    return Err(io::Error::from_raw_os_error(r));
                }
                let mut status = 0;
                // SAFETY: waits for our own child; `status` is writable.
                while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n += 1;
            }
            Ok(n)
        }));
    }
    start.wait();
    let t0 = Instant::now();
    let cpu0 = own_cpu_us()?;
    thread::sleep(o.duration);
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for w in workers {
        total += w
            .join()
            .map_err(|_| io::Error::other("a worker panicked"))??;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu = own_cpu_us()? - cpu0;
    // What spawning costs the process that spawns (its children's own
    // time not included): the least a server's CPU per connection can be.
    println!(
        "spawns {total} secs {secs:.3} per_s {:.1} cpu_us {:.2}",
        total as f64 / secs,
        cpu / total.max(1) as f64
    );
    Ok(())
}

/// User + system time of this process so far, its children not included,
/// in microseconds.
fn own_cpu_us() -> io::Result<f64> {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `ru` is writable storage for a rusage, filled on success.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: getrusage succeeded, so `ru` is initialised.
    let ru = unsafe { ru.assume_init() };
    // time_t and suseconds_t differ in width between systems.
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    Ok(us(ru.ru_utime) + us(ru.ru_stime))
}

/// Starts the server `o.repeat` times; each time, connects until one
/// connection is served, then stops the server.
fn first(o: &Opts) -> io::Result<()> {
    let path = socket_of(o).clone();
    if o.server.is_empty() {
        return Err(io::Error::other("no server command after --"));
    }
    let mut times = Vec::with_capacity(o.repeat);
    let mut buf = [0u8; 256];
    for _ in 0..o.repeat {
        let _ = std::fs::remove_file(&path);
        let t0 = Instant::now();
        let mut child = Command::new(&o.server[0])
            .args(&o.server[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()?;
        let deadline = t0 + Duration::from_secs(10);
        let served = loop {
            if one(&path, b"", &mut buf).is_ok() {
                break true;
            }
            if Instant::now() > deadline {
                break false;
            }
            thread::sleep(Duration::from_micros(100));
        };
        let elapsed = t0.elapsed();
        // SAFETY: kill(2) on our own child's pid, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        child.wait()?;
        if !served {
            return Err(io::Error::other("the server served nothing in 10 s"));
        }
        times.push(elapsed.as_micros().min(u32::MAX as u128) as u32);
    }
    let list: Vec<String> = times.iter().map(u32::to_string).collect();
    times.sort_unstable();
    println!(
        "first_us {} all_us {}",
        quantile(&times, 0.5),
        list.join(",")
    );
    Ok(())
}

/// Opens `-n` connections and keeps them open, to measure the server's
/// memory with that many children.
fn hold(o: &Opts) -> io::Result<()> {
    let path = socket_of(o).clone();
    let n = o.count.unwrap_or(500) as usize;
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = UnixStream::connect(&path)?;
        s.write_all(b"x")?;
        conns.push(s);
    }
    // A byte read back on each means its prog is running.
    let mut b = [0u8; 1];
    for s in &mut conns {
        s.read_exact(&mut b)?;
    }
    println!("ready {n}");
    io::stdout().flush()?;
    // Until stdin closes or the time is up, whichever comes first.
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let _ = io::copy(&mut io::stdin(), &mut io::sink());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(o.duration);
    Ok(())
}
