//! Starting the program for a connection: fds 0 and 1 on the connection,
//! fd 2 inherited, an empty signal mask, SIGPIPE at its default, and an
//! environment prepared once at start-up and patched per connection.
//!
//! The C library's `posix_spawn` does the starting, on every system that
//! has it. It returns only once the child has exec'd (or failed to), so a
//! small pool of spawner threads makes the calls: the event loop hands a
//! connection over (a [`Job`]) and goes back to accepting, and a spawner
//! hands back the child's pid (a [`Report`]).
//!
//! std's `Command` is no substitute: after a failed exec it reaps its child
//! itself, and panics when the event loop (which reaps every child) got
//! there first.

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

#[path = "spawn/posix_spawn.rs"]
mod backend;

pub use backend::{Program, CLOSES_BEFORE_EXEC};

/// A spawner's stack: it runs `posix_spawn` and little else (the C library
/// gives the child a stack of its own).
const SPAWNER_STACK: usize = 256 * 1024;

fn cstring(bytes: Vec<u8>, what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

/// Turns `prog...` into C strings once.
fn c_argv(argv: &[OsString]) -> io::Result<Vec<CString>> {
    if argv.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no program given",
        ));
    }
    argv.iter()
        .map(|a| cstring(a.clone().into_vec(), "an argument"))
        .collect()
}

/// Why the program cannot be started now, found out as `posix_spawnp`
/// would find it.
#[derive(Debug)]
pub enum Unrunnable {
    /// A bare name that no directory of `PATH` holds as an executable file.
    NotInPath,
    /// A path (given, or the first found in `PATH`) that is not an
    /// executable file: the system's reason.
    Path(io::Error),
}

/// Checks that `prog` can be started now, by this process (its uid, after
/// any drop of privileges), searching `path` (the server's `PATH`, or
/// glibc's default `/bin:/usr/bin`) for a bare name. A check at start-up
/// only: the program may appear or change later.
pub fn check_program(prog: &OsStr, path: Option<&OsStr>) -> Result<(), Unrunnable> {
    let bytes = prog.as_bytes();
    if bytes.contains(&b'/') {
        return executable(prog).map_err(Unrunnable::Path);
    }
    let path = path.map_or(&b"/bin:/usr/bin"[..], |p| p.as_bytes());
    let mut denied = None;
    for dir in path.split(|&c| c == b':') {
        // An empty entry is the current directory.
        let dir = if dir.is_empty() { &b"."[..] } else { dir };
        let mut candidate = dir.to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(bytes);
        match executable(OsStr::from_bytes(&candidate)) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                denied.get_or_insert(e);
            }
            Err(_) => {}
        }
    }
    // posix_spawnp reports EACCES when a file was found but not usable.
    Err(denied.map_or(Unrunnable::NotInPath, Unrunnable::Path))
}

/// Whether `path` is a regular file this process may execute.
fn executable(path: &OsStr) -> io::Result<()> {
    let c =
        CString::new(path.as_bytes()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated string that lives across the call.
    crate::cvt(unsafe { libc::access(c.as_ptr(), libc::X_OK) })?;
    if std::fs::metadata(path)?.is_file() {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EACCES))
    }
}

/// A connection to start the program on, with its environment.
pub struct Job {
    /// Chosen by the caller; comes back in the [`Report`].
    pub token: u64,
    /// Closed by the spawner once the child has it.
    pub conn: OwnedFd,
    pub env: EnvBlock,
}

/// What became of a [`Job`].
pub struct Report {
    pub token: u64,
    /// The child's pid, or why it could not be started.
    pub pid: io::Result<libc::pid_t>,
    /// The job's environment, back for reuse.
    pub env: EnvBlock,
}

/// What the event loop and the spawners share.
struct Shared {
    /// Each job waits here for a spawner; the loop hands one over only
    /// when fewer jobs are in flight than there are spawners, so none
    /// waits behind a spawner that is stuck.
    jobs: Mutex<Queue>,
    job_ready: Condvar,
    reports: Mutex<Vec<Report>>,
    /// A byte written here says that reports wait (`Spawner::fd`).
    wake: OwnedFd,
}

struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

/// Nothing in these sections can panic, but a poisoned lock would still
/// hold consistent data: take it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool of spawner threads, as the event loop sees it.
pub struct Spawner {
    shared: Arc<Shared>,
    /// Readable when reports wait.
    woken: OwnedFd,
    threads: usize,
    /// Jobs handed over whose reports have not been taken.
    in_flight: usize,
    argv: Vec<OsString>,
    own_from: RawFd,
    /// Spawners may start up to this many.
    max: usize,
    shortfall: Option<io::Error>,
}

impl Spawner {
    /// Prepares `argv` and starts one spawner; more start as spawns
    /// overlap, up to `max` (see [`Spawner::submit`]). Each blocks every
    /// signal, so that signals reach the event loop only.
    pub fn start(
        argv: &[OsString],
        max: usize,
        own_from: crate::fd::OwnFrom,
    ) -> io::Result<Spawner> {
        c_argv(argv)?;
        let max = max.max(1);
        let (woken, wake) = crate::fd::pipe_cloexec_nonblocking()?;
        let shared = Arc::new(Shared {
            jobs: Mutex::new(Queue {
                jobs: VecDeque::with_capacity(max),
                closed: false,
            }),
            job_ready: Condvar::new(),
            reports: Mutex::new(Vec::with_capacity(max)),
            wake,
        });
        let mut spawner = Spawner {
            shared,
            woken,
            argv: argv.to_vec(),
            own_from: own_from.0,
            threads: 0,
            max,
            in_flight: 0,
            shortfall: None,
        };
        spawner.grow()?;
        Ok(spawner)
    }

    /// Starts one more spawner.
    fn grow(&mut self) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let argv = self.argv.clone();
        let own_from = self.own_from;
        thread::Builder::new()
            .name("spawner".into())
            .stack_size(SPAWNER_STACK)
            .spawn(move || spawner_thread(&shared, &argv, own_from))?;
        self.threads += 1;
        Ok(())
    }

    /// How many spawners there are.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Why no more spawners could start, once, the first time it happens.
    /// Threads count toward the user's process limit (RLIMIT_NPROC, a
    /// cgroup's pids.max); from then on the spawners already started are
    /// all there is.
    pub fn take_shortfall(&mut self) -> Option<io::Error> {
        self.shortfall.take()
    }

    /// Readable when reports wait for [`Spawner::take_reports`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.woken.as_fd()
    }

    /// Whether a spawner is free for a job, or can be started.
    pub fn has_room(&self) -> bool {
        self.in_flight < self.max
    }

    /// Jobs handed over and not yet reported.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Hands `job` to a free spawner, starting one if every spawner is
    /// busy and fewer than the maximum run. Call only when
    /// [`Spawner::has_room`]. If no spawner can be started, the job waits
    /// for one that is busy, and the maximum becomes what there is.
    pub fn submit(&mut self, job: Job) {
        if self.in_flight >= self.threads && self.threads < self.max {
            if let Err(e) = self.grow() {
                self.max = self.threads;
                self.shortfall = Some(e);
            }
        }
        lock(&self.shared.jobs).jobs.push_back(job);
        self.shared.job_ready.notify_one();
        self.in_flight += 1;
    }

    /// Moves the waiting reports to `out`, in the order they were made.
    pub fn take_reports(&mut self, out: &mut Vec<Report>) {
        // The wake-up bytes go first: a report made after this is either
        // taken below or announced by a new byte.
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is a live writable buffer of the stated length.
        while unsafe { libc::read(self.woken.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) } > 0
        {
        }
        let before = out.len();
        out.append(&mut lock(&self.shared.reports));
        self.in_flight -= out.len() - before;
    }
}

impl Drop for Spawner {
    /// Idle spawners end; one inside `posix_spawn` ends after it.
    fn drop(&mut self) {
        lock(&self.shared.jobs).closed = true;
        self.shared.job_ready.notify_all();
    }
}

fn spawner_thread(shared: &Shared, argv: &[OsString], own_from: RawFd) {
    // A spawner that cannot prepare (out of memory, say) still answers
    // every job it takes, with that error.
    let mut program = crate::signals::block_all_in_this_thread()
        .and_then(|()| backend::Program::new(argv, own_from));
    loop {
        let job = {
            let mut q = lock(&shared.jobs);
            loop {
                if q.closed {
                    return;
                }
                if let Some(job) = q.jobs.pop_front() {
                    break job;
                }
                q = shared.job_ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let pid = match &mut program {
            Ok(program) => program.spawn(job.conn.as_fd(), &job.env),
            Err(e) => Err(same_error(e)),
        };
        // The spawner keeps no copy of the connection either.
        drop(job.conn);
        let report = Report {
            token: job.token,
            pid,
            env: job.env,
        };
        let first = {
            let mut reports = lock(&shared.reports);
            reports.push(report);
            reports.len() == 1
        };
        if first {
            // A full pipe already says that reports wait.
            // SAFETY: writes one byte from a live local to a descriptor
            // `shared` keeps open.
            unsafe { libc::write(shared.wake.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        }
    }
}

/// A copy of `e` for another report: a system error stays one, so that
/// it is printed in the C library's words.
fn same_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// A handle on one per-connection variable of an [`Environ`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(usize);

struct Var {
    /// `NAME=value\0`.
    buf: Vec<u8>,
    name_len: usize,
    set: bool,
}

/// The children's environment: the server's own, minus the variables the
/// server manages, plus those variables as set for the current connection.
pub struct Environ {
    /// The inherited variables, each `NAME=value\0`, end to end.
    base: Vec<u8>,
    /// Where each inherited variable starts in `base`.
    base_at: Vec<usize>,
    vars: Vec<Var>,
}

/// A copy of an [`Environ`] as it was for one connection, which a spawner
/// turns into `envp`: each `NAME=value\0`, end to end, and where each
/// starts. Its buffers keep their capacity from one use to the next.
#[derive(Default)]
pub struct EnvBlock {
    strings: Vec<u8>,
    starts: Vec<usize>,
}

impl EnvBlock {
    /// `NAME=value` for every variable, without the NUL bytes.
    pub fn entries(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self.starts.iter().skip(1).copied();
        let ends = ends.chain(std::iter::once(self.strings.len()));
        self.starts
            .iter()
            .zip(ends)
            .map(|(&start, end)| &self.strings[start..end - 1])
    }
}

impl Environ {
    /// The server's environment without any of the `managed` names.
    pub fn inherit(managed: &[&str]) -> Environ {
        let mut base = Vec::new();
        let mut base_at = Vec::new();
        for (k, v) in std::env::vars_os() {
            // The environment the server got cannot hold NUL bytes, but
            // what `set_var` put there since might.
            if managed.iter().any(|m| OsStr::new(m) == k)
                || k.as_bytes().contains(&0)
                || v.as_bytes().contains(&0)
            {
                continue;
            }
            base_at.push(base.len());
            base.extend_from_slice(k.as_bytes());
            base.push(b'=');
            base.extend_from_slice(v.as_bytes());
            base.push(0);
        }
        Environ {
            base,
            base_at,
            vars: Vec::new(),
        }
    }

    /// Declares a per-connection variable, unset until [`Environ::set`].
    pub fn slot(&mut self, name: &str) -> Slot {
        let mut buf = Vec::with_capacity(name.len() + 64);
        buf.extend_from_slice(name.as_bytes());
        buf.push(b'=');
        self.vars.push(Var {
            buf,
            name_len: name.len(),
            set: false,
        });
        Slot(self.vars.len() - 1)
    }

    /// Sets `slot` to the text `write` produces. A NUL byte in it is an
    /// error and leaves the variable unset.
    pub fn set_with<F>(&mut self, slot: Slot, write: F) -> io::Result<()>
    where
        F: FnOnce(&mut Vec<u8>) -> io::Result<()>,
    {
        let var = &mut self.vars[slot.0];
        var.buf.truncate(var.name_len + 1);
        var.set = false;
        write(&mut var.buf)?;
        if var.buf[var.name_len + 1..].contains(&0) {
            var.buf.truncate(var.name_len + 1);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "an environment value contains a NUL byte",
            ));
        }
        var.buf.push(0);
        var.set = true;
        Ok(())
    }

    pub fn set(&mut self, slot: Slot, value: &[u8]) -> io::Result<()> {
        self.set_with(slot, |buf| buf.write_all(value))
    }

    pub fn unset(&mut self, slot: Slot) {
        self.vars[slot.0].set = false;
    }

    /// Copies the environment as it is now into `out`: one copy of the
    /// inherited variables, then the set ones.
    pub fn render_into(&self, out: &mut EnvBlock) {
        out.strings.clear();
        out.strings.extend_from_slice(&self.base);
        out.starts.clear();
        out.starts.extend_from_slice(&self.base_at);
        for v in self.vars.iter().filter(|v| v.set) {
            out.starts.push(out.strings.len());
            out.strings.extend_from_slice(&v.buf);
        }
    }

    /// The environment as it is now, in a new block: the server reuses its
    /// blocks ([`Environ::render_into`]), so only the tests need this.
    #[cfg(feature = "test-support")]
    pub fn render(&self) -> EnvBlock {
        let mut out = EnvBlock::default();
        self.render_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spawner that could not prepare answers each job with its error:
    /// a system error keeps its number, so that it is printed in the C
    /// library's words, with no " (os error N)" of Rust's.
    #[test]
    fn a_preparation_error_keeps_its_errno() {
        let e = same_error(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert_eq!(e.raw_os_error(), Some(libc::ENOMEM));
        let e = same_error(&io::Error::new(
            io::ErrorKind::InvalidInput,
            "no program given",
        ));
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (io::ErrorKind::InvalidInput, "no program given")
        );
    }
}
