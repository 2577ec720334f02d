//! The harness every integration test uses: the real binary, real sockets,
//! and clean-up of every process a test starts.
#![allow(dead_code)] // each test file uses a different part of it

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod skipped;
pub use skipped::record_skip;

/// How long any single wait in a test may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_s6-ipcserver")
}

/// The serving half on its own.
pub fn bin_d() -> &'static str {
    env!("CARGO_BIN_EXE_s6-ipcserverd")
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and has no memory effects.
    unsafe { libc::geteuid() == 0 }
}

/// Returns true, after recording the skip ([`record_skip`]), when the test
/// needs root and does not have it.
pub fn skip_unless_root(test: &str) -> bool {
    skip_unless(is_root(), test, "needs root")
}

/// Returns true, after recording the skip, when `available` is false.
pub fn skip_unless(available: bool, test: &str, reason: &str) -> bool {
    if !available {
        record_skip(test, reason);
    }
    !available
}

/// Whether `tool` is a command on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", "command -v \"$0\"", tool])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Returns true, after recording the skip, when the test runs `tool` (one
/// of the C s6 programs, say) and it is not on PATH: `ci/deps` installs
/// what the tests use.
pub fn skip_unless_tool(test: &str, tool: &str) -> bool {
    skip_unless(
        have(tool),
        test,
        &format!("needs {tool} (ci/deps installs it)"),
    )
}

/// A fresh directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "s6ipc-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A command for the real binary, in a process group of its own so that the
/// server and every child it spawns can be killed together.
pub fn command() -> Command {
    let mut cmd = Command::new(bin());
    cmd.process_group(0);
    cmd
}

/// Runs the binary to completion (for commands expected to exit at once);
/// returns status, stdout and stderr.
pub fn run(args: &[&str]) -> (ExitStatus, String, String) {
    run_cmd(command().args(args))
}

pub fn run_cmd(cmd: &mut Command) -> (ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn s6-ipcserver");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut out = String::new();
            let mut err = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status, out, err);
        }
        if Instant::now() > deadline {
            kill_group(child.id() as i32);
            let _ = child.wait();
            panic!("s6-ipcserver did not exit within {TIMEOUT:?}: {:?}", cmd);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

pub fn kill_group(pgid: i32) {
    // SAFETY: kill has no memory effects; a negative pid names a group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

/// A running server, started with `-1` so that the test knows when it
/// accepts connections. Its stderr is collected line by line.
pub struct Server {
    pub child: Child,
    pub path: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
    pub dir: TempDir,
}

impl Server {
    /// Starts `s6-ipcserver -1 OPTIONS DIR/sock PROG...`.
    pub fn start(options: &[&str], prog: &[&str]) -> Server {
        Self::start_with(options, prog, |_| {})
    }

    /// Like [`Server::start`], with a hook to adjust the command (env, uid).
    pub fn start_with(
        options: &[&str],
        prog: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Server {
        let dir = TempDir::new();
        let path = dir.join("sock");
        let mut cmd = command();
        cmd.arg("-1").args(options).arg(&path).args(prog);
        adjust(&mut cmd);
        Self::spawn_ready(cmd, path, dir)
    }

    /// Spawns `cmd`, which must use `-1`, and waits for its readiness line.
    pub fn spawn_ready(cmd: Command, path: PathBuf, dir: TempDir) -> Server {
        let mut expected = path.as_os_str().as_encoded_bytes().to_vec();
        expected.push(b'\n');
        Self::spawn_expecting(cmd, path, dir, &expected)
    }

    /// Spawns `cmd` and waits until it has written `expected` to stdout and
    /// closed it (`-1`: s6-ipcserver writes PATH and a newline,
    /// s6-ipcserverd a newline).
    pub fn spawn_expecting(cmd: Command, path: PathBuf, dir: TempDir, expected: &[u8]) -> Server {
        Self::spawn_on(cmd, Stdio::null(), path, dir, expected)
    }

    /// Like [`Server::spawn_expecting`], with `stdin` (a listening socket,
    /// for s6-ipcserverd).
    pub fn spawn_on(
        mut cmd: Command,
        stdin: Stdio,
        path: PathBuf,
        dir: TempDir,
        expected: &[u8],
    ) -> Server {
        let mut child = cmd
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn s6-ipcserver");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        let reader = thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        let mut server = Server {
            child,
            path,
            log,
            reader: Some(reader),
            dir,
        };
        let mut stdout = server.child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stdout.read_to_end(&mut all);
            let _ = tx.send(all);
        });
        let line = match rx.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(_) => panic!("no readiness line; stderr: {:?}", server.lines()),
        };
        assert_eq!(
            line,
            expected,
            "-1 writes its line, then closes stdout; stderr: {:?}",
            server.lines()
        );
        server
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a stderr line contains `needle`; returns that line.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(l) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return l;
            }
            if Instant::now() > deadline {
                panic!("no log line containing {needle:?}; got {:#?}", self.lines());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until `count` stderr lines contain `needle`.
    pub fn wait_log_count(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let n = self.lines().iter().filter(|l| l.contains(needle)).count();
            if n >= count {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{n} log lines containing {needle:?}, wanted {count}; got {:#?}",
                    self.lines()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the server to exit and returns its status; stderr is then
    /// complete.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                if let Some(r) = self.reader.take() {
                    // stderr closes once the server and its children are
                    // gone; children may outlive it, so do not block forever.
                    let t0 = Instant::now();
                    while !r.is_finished() && t0.elapsed() < Duration::from_secs(1) {
                        thread::sleep(Duration::from_millis(5));
                    }
                    if r.is_finished() {
                        let _ = r.join();
                    }
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!("server did not exit; log {:#?}", self.lines());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn connect(&self) -> UnixStream {
        connect(&self.path)
    }

    /// Connects, sends `input`, half-closes, reads the whole answer.
    pub fn request(&self, input: &[u8]) -> Vec<u8> {
        request(&self.path, input)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill_group(self.pid());
        let _ = self.child.wait();
    }
}

pub fn connect(path: &Path) -> UnixStream {
    let s =
        UnixStream::connect(path).unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

pub fn request(path: &Path, input: &[u8]) -> Vec<u8> {
    let mut s = connect(path);
    finish(&mut s, input)
}

/// Sends `input` on a connected stream, half-closes, reads to EOF.
pub fn finish(s: &mut UnixStream, input: &[u8]) -> Vec<u8> {
    if !input.is_empty() {
        s.write_all(input).expect("write request");
    }
    s.shutdown(std::net::Shutdown::Write).ok();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read answer to EOF");
    out
}

/// A system error's text as the server writes it after `: `, as the C
/// programs do (no "(os error N)").
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    text.strip_suffix(&format!(" (os error {errno})"))
        .unwrap_or(&text)
        .to_string()
}

/// Fails unless nothing has been written to `s` yet for it to read: the
/// server has not served this client (it waits in the backlog).
pub fn assert_unanswered(s: &UnixStream, why: &str) {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 16];
    let got = (&*s).read(&mut b).map_err(|e| e.kind());
    s.set_nonblocking(false).unwrap();
    assert_eq!(got, Err(std::io::ErrorKind::WouldBlock), "{why}");
}

/// The signal set `field` (`SigBlk`, `SigIgn`...) of a /proc/PID/status
/// text, as a mask with bit `sig - 1` for signal `sig`.
pub fn signal_set(status: &str, field: &str) -> u64 {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in {status:?}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap_or_else(|e| panic!("{field}: {hex:?}: {e}"))
}

/// The bit of signal `sig` in a [`signal_set`].
pub fn sig_bit(sig: i32) -> u64 {
    1 << (sig - 1)
}

/// Parses `NAME=value` lines (as printed by `env -0`, NUL-separated) into
/// pairs of byte strings.
pub fn parse_env0(raw: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw.split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let eq = e.iter().position(|&b| b == b'=').unwrap_or(e.len());
            (
                e[..eq].to_vec(),
                e.get(eq + 1..).unwrap_or_default().to_vec(),
            )
        })
        .collect()
}

pub fn env_get<'a>(env: &'a [(Vec<u8>, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    env.iter()
        .find(|(k, _)| k == name.as_bytes())
        .map(|(_, v)| v.as_slice())
}

/// Runs `s6-ipcclient` as uid/gid 65534 against the server; returns what
/// the server's child wrote. The directory is opened to others first.
pub fn request_as_nobody(server: &Server) -> Vec<u8> {
    ipcclient_as_nobody(server).stdout
}

/// [`request_as_nobody`], with s6-ipcclient's exit status (111: it could
/// not connect) and stderr.
pub fn ipcclient_as_nobody(server: &Server) -> std::process::Output {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // s6-ipcclient's client cannot half-close (fds 6 and 7 are one socket):
    // it sends a line, which the server's child may wait for.
    Command::new("timeout")
        .args(["10", "s6-ipcclient"])
        .arg(&server.path)
        .args(["sh", "-c", "echo >&7; cat <&6"])
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run s6-ipcclient (Debian package s6)")
}

/// Polls `cond` every few milliseconds until it holds (true) or
/// [`TIMEOUT`] passes (false).
fn poll(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Polls `cond` until it holds or the timeout passes.
pub fn eventually(what: &str, cond: impl FnMut() -> bool) {
    if !poll(cond) {
        panic!("timed out waiting for: {what}");
    }
}

/// How long a test watches for something that must never happen (a child
/// too many). A correct server passes however long the watch; a broken
/// one is caught when the fault shows within it.
pub const WATCH: Duration = Duration::from_millis(300);

/// Whether a process exists (and is not a zombie).
pub fn alive(pid: i32) -> bool {
    state(pid).is_some_and(|s| s != 'Z')
}

/// The fields of /proc/PID/stat after the command name, the state first
/// (so field N of proc(5) is at N - 3), or `None` once `pid` is gone.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = stat.rsplit(')').next()?;
    Some(after_name.split_whitespace().map(String::from).collect())
}

/// The one-letter state of `pid` (R, S, T, Z...).
pub fn state(pid: i32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// Every child of `ppid`, running or zombie, that is alive at one moment.
/// A server's children are its connections' programs and nothing else
/// (one child per connection), so this counts them.
pub fn children_of(ppid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if identity(pid).is_some_and(|(parent, _)| parent == ppid) {
            found.push(pid);
        }
    }
    alive_together(ppid, found)
}

/// A process's parent and start time (stat fields [1] and [19] after the
/// name): together they name one process, whatever pids the kernel reuses.
fn identity(pid: i32) -> Option<(i32, String)> {
    let f = stat_fields(pid)?;
    Some((f.get(1)?.parse::<i32>().ok()?, f.get(19)?.clone()))
}

/// Those of `candidates` that are children of `ppid` all at one moment.
/// Reading /proc is not a snapshot: one pid is read after the other, and a
/// child reaped behind the reads while a new one starts ahead of them
/// would be counted with it. So each candidate is read twice, all of them
/// once and then all again, and kept only if it is the same child both
/// times: each kept one was alive from its first read to its second, so
/// all of them were alive between the two rounds. This can miss a child,
/// never count one too many.
pub fn alive_together(ppid: i32, candidates: Vec<i32>) -> Vec<i32> {
    let first: Vec<(i32, (i32, String))> = candidates
        .into_iter()
        .filter_map(|pid| Some((pid, identity(pid)?)))
        .filter(|(_, (parent, _))| *parent == ppid)
        .collect();
    first
        .into_iter()
        .filter(|(pid, id)| identity(*pid).as_ref() == Some(id))
        .map(|(pid, _)| pid)
        .collect()
}

/// What the children are, for a failure message: pid, state, executable.
fn describe(pids: &[i32]) -> String {
    let each: Vec<String> = pids
        .iter()
        .map(|&p| {
            let exe = exe(p).map_or("?".into(), |e| e.display().to_string());
            format!("{p} {} {exe}", state(p).unwrap_or('?'))
        })
        .collect();
    format!("[{}]", each.join(", "))
}

/// Fails, naming them, if `server` has more than `n` children now.
pub fn assert_children_at_most(server: i32, n: usize) {
    let kids = children_of(server);
    assert!(
        kids.len() <= n,
        "server {server} has {} children, at most {n} expected (one per live connection): {}",
        kids.len(),
        describe(&kids)
    );
}

/// [`assert_children_at_most`], again and again for [`WATCH`].
pub fn assert_children_stay_at_most(server: i32, n: usize) {
    let end = Instant::now() + WATCH;
    while Instant::now() < end {
        assert_children_at_most(server, n);
        thread::sleep(Duration::from_millis(5));
    }
    assert_children_at_most(server, n);
}

/// Waits until `server` has exactly `n` children (zombies count).
pub fn wait_children(server: i32, n: usize) {
    if !poll(|| children_of(server).len() == n) {
        let kids = children_of(server);
        panic!(
            "timed out waiting for server {server} to have {n} children; it has {}: {}",
            kids.len(),
            describe(&kids)
        );
    }
}

/// Waits until `server` has no child at all, none running, no zombie.
pub fn wait_no_children(server: i32) {
    wait_children(server, 0);
}

/// Waits until none of `pids` is a child of `server` any more: each has
/// ended and the server has reaped it.
pub fn wait_reaped(server: i32, pids: &[i32]) {
    if !poll(|| !children_of(server).iter().any(|p| pids.contains(p))) {
        let kids = children_of(server);
        panic!(
            "timed out waiting for server {server} to reap {pids:?}; its children: {}",
            describe(&kids)
        );
    }
}

fn exe(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// The executable `prog` names, as /proc/PID/exe shows it once a process
/// runs it: looked up in `PATH` when it has no slash, links resolved.
pub fn executable(prog: &str) -> PathBuf {
    let found = if prog.contains('/') {
        Some(PathBuf::from(prog))
    } else {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join(prog))
                .find(|p| p.is_file())
        })
    };
    let found = found.unwrap_or_else(|| panic!("{prog} not found in PATH"));
    std::fs::canonicalize(&found).unwrap_or_else(|e| panic!("{}: {e}", found.display()))
}

/// Waits until `pid` has exec'd `prog` (its /proc/PID/exe is `prog`'s
/// executable). Until then its descriptors, mask and dispositions are
/// those of whatever spawns it, not what the program gets; an `allow`
/// line says the server spawned it, not that the exec happened.
pub fn wait_exec(pid: i32, prog: &str) {
    let want = executable(prog);
    if !poll(|| exe(pid).as_ref() == Some(&want)) {
        panic!(
            "process {pid} did not exec {}: its exe is {:?}",
            want.display(),
            exe(pid)
        );
    }
}

/// The descriptors a process has open, as fd numbers.
pub fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    fds
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// Returns true, after recording the skip, when the test reads
/// /proc/PID/{fd,stat,status} (directly or through [`alive`],
/// [`children_of`] and [`open_fds`]) and this system has no such thing.
pub fn skip_unless_procfs(test: &str) -> bool {
    skip_unless(platform::host::PROCFS, test, "needs /proc (Linux)")
}

/// Returns true, after recording the skip, when the test binds abstract
/// socket addresses and this system has none.
pub fn skip_unless_abstract_addresses(test: &str) -> bool {
    skip_unless(
        platform::host::ABSTRACT_ADDRESSES,
        test,
        "needs abstract socket addresses (Linux)",
    )
}

/// Every CPU kept busy by a spinning thread until this is dropped (even by
/// a test's panic): the server's threads are then often descheduled at the
/// worst moment, which races need to show.
pub struct BusyCpus {
    stop: Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

pub fn busy_cpus() -> BusyCpus {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (0..cpus)
        .map(|_| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    BusyCpus { stop, threads }
}

impl Drop for BusyCpus {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs `cmd` (its stdin set by the caller, stdout and stderr piped here)
/// to completion within [`TIMEOUT`], reading both pipes as it runs; kills
/// its process group and fails if it does not exit in time. For programs
/// other than s6-ipcserver (the toolkit's, and the C ones beside them).
pub fn output_within(cmd: &mut Command) -> std::process::Output {
    let mut child = cmd
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut all = Vec::new();
            let _ = r.read_to_end(&mut all);
            all
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            kill_group(child.id() as i32);
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}
