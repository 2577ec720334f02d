//! The serving half, shared by both programs: given a listening socket,
//! the event loop. What happens to a connection reads top to bottom in
//! [`Server::serve`] (accept, look up, count, hand over to a spawner) and
//! [`Server::on_report`] (the child is in the table).

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use platform::children::{self, Ending};
use platform::credentials::{self, Credentials, Groups};
use platform::fd::OwnFrom;
use platform::signals::Signals;
use platform::socket::{self, PeerAddr, RemoteAddr};
use platform::spawn::{EnvBlock, Environ, Job, Report, Slot, Spawner, Unrunnable};

use super::table::{ConnectionTable, Owed, ANONYMOUS};
use super::Serving;
use crate::error::{Error, Os};
use crate::log::Log;

/// How long accepting pauses after `accept` failed for lack of resources
/// (EMFILE, ENFILE, ENOBUFS...), unless a child exits first.
const BACKOFF: Duration = Duration::from_millis(100);

/// How long SIGQUIT and SIGABRT wait for spawns in flight to return, so
/// that their children get the signals too, before the server exits.
const SETTLE: Duration = Duration::from_secs(1);

/// How long a `-C` denial waits, at most, for the report of a spawn of the
/// same uid, whose child may have exited already (`settle_uid`). A spawn
/// reports within microseconds of its child's exec; only a child stopped
/// before its exec takes longer, and it is waited for once.
const REPORT_WAIT: Duration = Duration::from_millis(20);

/// Spawner threads per CPU, at most: `posix_spawn` holds its thread until
/// the child has exec'd, so a few per CPU keep every CPU busy execing
/// (doc/performance.md). One starts with the server, the others as spawns
/// overlap.
const SPAWNERS_PER_CPU: usize = 2;
const MIN_SPAWNERS: usize = 2;
const MAX_SPAWNERS: usize = 16;

const TRAPPED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGABRT,
];

/// What the `allow` line needs once the spawn has returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Accepted {
    creds: Option<Credentials>,
    /// IPCCONNNUM: this uid's connections, this one included.
    connnum: u32,
}

/// The per-connection environment variables.
struct Vars {
    euid: Slot,
    egid: Slot,
    /// Set where the system records the client's pid (platform/), unset
    /// where it does not, and with `-P`.
    pid: Slot,
    /// The client's supplementary groups, comma-separated; unset where the
    /// system does not record all of them, and with `-P`.
    gidlist: Slot,
    connnum: Slot,
    path: Slot,
}

struct Server {
    cfg: Serving,
    log: Log,
    listener: OwnedFd,
    signals: Signals,
    spawner: Spawner,
    env: Environ,
    vars: Vars,
    /// Environment blocks back from the spawners, for reuse.
    blocks: Vec<EnvBlock>,
    reports: Vec<Report>,
    table: ConnectionTable<Accepted>,
    peer: PeerAddr,
    /// The client's groups, refilled for every connection.
    groups: Groups,
    /// Accepting is paused until then after a resource shortage.
    backoff_until: Option<Instant>,
    /// Whether the current resource shortage was already logged.
    shortage_logged: bool,
    /// A child exited that only a report still in flight can name: reap
    /// again once reports come.
    reap_waits: bool,
}

/// Serves `listener` until a terminating signal. Binding and privileges
/// were seen to before (listen.rs); the program's own descriptors are all
/// at `own_from` and above (platform::fd::reserve_inherited).
pub fn run(cfg: Serving, listener: OwnedFd, own_from: OwnFrom) -> Result<(), Error> {
    let log = Log {
        program: cfg.program,
        verbosity: cfg.verbosity,
    };
    // Everything that can be prepared without touching the system is, so
    // that the per-connection path only patches it.
    let mut managed = vec![
        "PROTO",
        "IPCREMOTEEUID",
        "IPCREMOTEEGID",
        "IPCREMOTEPID",
        "IPCREMOTEGIDLIST",
        "IPCCONNNUM",
        "IPCREMOTEPATH",
    ];
    managed.extend_from_slice(cfg.unset);
    let mut env = Environ::inherit(&managed);
    let proto = env.slot("PROTO");
    env.set(proto, b"IPC")
        .map_err(|_| Error::Bug("PROTO value"))?;
    let vars = Vars {
        euid: env.slot("IPCREMOTEEUID"),
        egid: env.slot("IPCREMOTEEGID"),
        pid: env.slot("IPCREMOTEPID"),
        gidlist: env.slot("IPCREMOTEGIDLIST"),
        connnum: env.slot("IPCCONNNUM"),
        path: env.slot("IPCREMOTEPATH"),
    };

    let signals =
        Signals::install(&TRAPPED).map_err(|e| Error::sys("unable to trap signals", e))?;
    platform::signals::ignore_sigpipe().map_err(|e| Error::sys("unable to ignore SIGPIPE", e))?;

    // After the signals: the spawners block every signal, so that they
    // reach the event loop only.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cpus * SPAWNERS_PER_CPU)
        .clamp(MIN_SPAWNERS, MAX_SPAWNERS)
        .min(cfg.maxconn as usize);
    let spawner = Spawner::start(&cfg.argv, threads, own_from)
        .map_err(|e| Error::sys("unable to start the spawner threads", e))?;

    let mut server = Server {
        // At most one connection per spawner is in flight (the loop
        // accepts only while a spawner has room).
        table: ConnectionTable::with_capacity(cfg.maxconn, threads),
        blocks: (0..threads).map(|_| EnvBlock::default()).collect(),
        reports: Vec::with_capacity(threads),
        cfg,
        log,
        listener,
        signals,
        spawner,
        env,
        vars,
        peer: PeerAddr::default(),
        groups: Groups::new(),
        backoff_until: None,
        shortage_logged: false,
        reap_waits: false,
    };
    // The limits in effect (-c and -C after clamping), and the path as it
    // is, byte for byte.
    let limits = format!(
        "maxconn {}, localmaxconn {}",
        server.cfg.maxconn, server.cfg.localmaxconn
    );
    match &server.cfg.listening_on {
        Some((path, backlog)) => server.log.info_bytes(
            &format!("starting - {limits}, backlog {backlog} - listening on "),
            path.as_os_str().as_encoded_bytes(),
        ),
        None => server.log.info(format_args!("starting - {limits}")),
    }
    server.status();
    // The C server finds out at the first client; the program may still
    // appear later, so this is a warning.
    let prog = &server.cfg.argv[0];
    if let Err(why) = platform::spawn::check_program(prog, std::env::var_os("PATH").as_deref()) {
        let why = match &why {
            Unrunnable::NotInPath => "not found in PATH".to_string(),
            Unrunnable::Path(e) => Os(e).to_string(),
        };
        server.log.warn(format_args!(
            "{} cannot be run now: {why}; until it can, each client's connection is closed at once",
            prog.to_string_lossy()
        ));
    }
    if let Some(line) = &server.cfg.notify {
        platform::fd::notify_and_close_stdout(line)
            .map_err(|e| Error::sys("unable to write the readiness line to stdout", e))?;
    }
    // Children that ended before the signals were trapped (inherited from
    // whatever ran in this process before the exec) sent a SIGCHLD that is
    // gone: reap them now, not at the next one.
    server.reap();
    server.event_loop()
}

impl Server {
    fn status(&self) {
        self.log.info(format_args!(
            "status: {}/{}",
            self.table.live(),
            self.cfg.maxconn
        ));
    }

    fn event_loop(&mut self) -> Result<(), Error> {
        let mut buf = [0u8; 64];
        loop {
            let now = Instant::now();
            if self.backoff_until.is_some_and(|t| now >= t) {
                self.backoff_until = None;
            }
            // A client waits in the backlog while every spawner is busy:
            // accepting it could only make it wait in the server instead.
            let accepting = self.table.live() < self.cfg.maxconn
                && self.spawner.has_room()
                && self.backoff_until.is_none();
            let timeout = match self.backoff_until {
                Some(t) => PollTimeout::try_from(t - now).unwrap_or(PollTimeout::MAX),
                None => PollTimeout::NONE,
            };
            let (sig_ready, reports_ready, conn_ready) = {
                let mut fds = [
                    PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                    PollFd::new(self.spawner.fd(), PollFlags::POLLIN),
                    PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
                ];
                let n = if accepting { 3 } else { 2 };
                match poll(&mut fds[..n], timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("unable to poll", e.into())),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                (ready(&fds[0]), ready(&fds[1]), n == 3 && ready(&fds[2]))
            };
            // Reports first: a child is in the table before its exit is
            // reaped (one reaped earlier is kept for its report anyway).
            if reports_ready {
                self.take_reports();
            }
            if sig_ready {
                let n = self
                    .signals
                    .drain(&mut buf)
                    .map_err(|e| Error::sys("unable to read the caught signals", e))?
                    .len();
                for &signo in &buf[..n] {
                    if let Some(done) = self.on_signal(signo.into()) {
                        return done;
                    }
                }
            }
            // One connection a round, as the C server: a flood of clients
            // that are denied at once never keeps signals, reports and
            // exits waiting.
            if conn_ready {
                self.accept_one();
            }
        }
    }

    /// Handles one caught signal; `Some` ends the server.
    fn on_signal(&mut self, signo: i32) -> Option<Result<(), Error>> {
        const TERM_CONT: Owed = Owed {
            term_cont: true,
            kill: false,
        };
        const KILL: Owed = Owed {
            term_cont: false,
            kill: true,
        };
        match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => {
                self.reap();
                None
            }
            Ok(Signal::SIGTERM) => {
                self.log.info(format_args!("received SIGTERM, quitting"));
                Some(self.exit())
            }
            Ok(Signal::SIGHUP) => {
                self.log.info(format_args!(
                    "received SIGHUP, sending SIGTERM+SIGCONT to all connections"
                ));
                self.signal_all(TERM_CONT);
                None
            }
            Ok(Signal::SIGQUIT) => {
                self.log.info(format_args!(
                    "received SIGQUIT, sending SIGTERM+SIGCONT to all connections and quitting"
                ));
                self.signal_all(TERM_CONT);
                self.settle();
                Some(self.exit())
            }
            Ok(Signal::SIGABRT) => {
                self.log.info(format_args!(
                    "received SIGABRT, sending SIGKILL to all connections and quitting"
                ));
                self.signal_all(KILL);
                self.settle();
                Some(self.exit())
            }
            _ => Some(Err(Error::Bug("an untrapped signal was read"))),
        }
    }

    fn exit(&self) -> Result<(), Error> {
        self.log.info(format_args!("exiting"));
        Ok(())
    }

    /// Sends `owed` to every live child now, and to every child whose
    /// spawn is in flight as soon as its pid is known.
    fn signal_all(&mut self, owed: Owed) {
        for pid in self.table.pids() {
            signal(pid, owed);
        }
        self.table.owe(owed);
    }

    /// Before quitting: waits up to `SETTLE` for the spawns in flight, so
    /// that what their children are owed reaches them.
    fn settle(&mut self) {
        let deadline = Instant::now() + SETTLE;
        while self.table.in_flight() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let n = self.spawner.in_flight();
                self.log.warn(format_args!(
                    "{n} spawn{} did not return within {} s: not signalled",
                    if n == 1 { "" } else { "s" },
                    SETTLE.as_secs()
                ));
                return;
            }
            let mut fds = [PollFd::new(self.spawner.fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => self.take_reports(),
                Err(e) => {
                    self.log
                        .warn(format_args!("unable to poll: {}", Os(&e.into())));
                    return;
                }
            }
        }
    }

    /// Reaps every child that exited and may be reaped (the table's
    /// rule); counts drop at once. A child is looked at before it is
    /// reaped, and one that only a report in flight can name is left for
    /// after that report.
    fn reap(&mut self) {
        self.reap_waits = false;
        loop {
            let pid = match children::next_exited() {
                Ok(Some(pid)) => pid,
                Ok(None) => return,
                Err(e) => {
                    self.log
                        .warn(format_args!("unable to wait for children: {}", Os(&e)));
                    return;
                }
            };
            // A child the table does not know while spawns are in flight
            // waits for their reports, unless the system says it is a
            // stranger (platform::children::is_stranger).
            if !self.table.may_reap(pid) && !children::is_stranger(pid).unwrap_or(false) {
                self.reap_waits = true;
                return;
            }
            let ending = match children::reap(pid) {
                Ok(Some(ending)) => ending,
                // Seen as exited a moment ago; should the system disagree,
                // try again after the next report or exit, not now.
                Ok(None) => {
                    self.reap_waits = true;
                    return;
                }
                Err(e) => {
                    self.log
                        .warn(format_args!("unable to wait for child {pid}: {}", Os(&e)));
                    return;
                }
            };
            if let Some(uid) = self.table.reaped(pid) {
                self.ended(pid, uid, ending);
            }
        }
    }

    /// A connection ended, so there is room: accepting resumes at once.
    fn ended(&mut self, pid: libc::pid_t, uid: libc::uid_t, ending: Ending) {
        self.backoff_until = None;
        if self.log.verbose() {
            let uid = Id(self.cfg.lookup.then_some(uid));
            let (how, code) = match ending {
                Ending::Exited(code) => ("exitcode", code),
                Ending::Signaled(sig) => ("signal", sig),
            };
            self.log
                .info(format_args!("end pid {pid} uid {uid} {how} {code}"));
            self.status();
        }
    }

    fn take_reports(&mut self) {
        let mut reports = std::mem::take(&mut self.reports);
        self.spawner.take_reports(&mut reports);
        let any = !reports.is_empty();
        for report in reports.drain(..) {
            self.on_report(report);
        }
        self.reports = reports;
        if any && self.reap_waits {
            self.reap();
        }
    }

    /// A spawn returned: the child is a live connection from now on, or
    /// the connection is dropped.
    fn on_report(&mut self, report: Report) {
        self.blocks.push(report.env);
        let pid = match report.pid {
            Ok(pid) => pid,
            Err(e) => {
                self.table.abandon(report.token);
                self.log.warn(format_args!(
                    "unable to spawn {}: {}",
                    self.cfg.argv[0].to_string_lossy(),
                    Os(&e)
                ));
                return;
            }
        };
        // Each job is reported once.
        let Some(p) = self.table.spawned(report.token, pid) else {
            return;
        };
        if self.log.verbose() {
            let (u, g) = ids(p.data.creds);
            let n = Id(self.cfg.lookup.then_some(p.data.connnum));
            self.log.info(format_args!(
                "allow {u}:{g} pid {pid} count {n}/{}",
                self.cfg.localmaxconn
            ));
            self.status();
        }
        signal(pid, p.owed);
    }

    /// Accepts one connection, if there is room.
    fn accept_one(&mut self) {
        if self.table.live() >= self.cfg.maxconn || !self.spawner.has_room() {
            return;
        }
        match socket::accept(self.listener.as_fd(), &mut self.peer) {
            Ok(conn) => {
                self.shortage_logged = false;
                self.serve(conn);
            }
            // Nothing waits after all, the client gave up, or a signal
            // came: the next round sees.
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || matches!(
                        Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                        Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO
                    ) => {}
            Err(e) => self.accept_failed(&e),
        }
    }

    /// EMFILE, ENFILE, ENOBUFS, ENOMEM...: retrying now would spin. Pause
    /// until a child exits or a moment passes, and say so once per episode.
    fn accept_failed(&mut self, e: &std::io::Error) {
        if !self.shortage_logged {
            self.log.warn(format_args!(
                "unable to accept, pausing until a connection ends: {}",
                Os(e)
            ));
            self.shortage_logged = true;
        }
        self.backoff_until = Some(Instant::now() + BACKOFF);
    }

    /// One connection: look up, apply `-C`, set the environment, count,
    /// hand over to a spawner. Every decision about it is made here.
    fn serve(&mut self, conn: OwnedFd) {
        let creds = if self.cfg.lookup {
            match credentials::peer_with_groups(&conn, &mut self.groups) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.log.warn(format_args!(
                        "unable to get the client's credentials: {}",
                        Os(&e)
                    ));
                    return;
                }
            }
        } else {
            None
        };
        let uid = creds.map_or(ANONYMOUS, |c| c.uid);
        let mut count = self.table.count(uid);
        if count >= self.cfg.localmaxconn {
            self.settle_uid(uid);
            count = self.table.count(uid);
        }
        if count >= self.cfg.localmaxconn {
            let (u, g) = ids(creds);
            self.log.deny(format_args!(
                "deny {u}:{g} count {count}/{}",
                self.cfg.localmaxconn
            ));
            return;
        }
        let connnum = count + 1;
        if let Err(e) = self.set_env(creds, connnum) {
            self.log
                .warn(format_args!("unable to set the environment: {}", Os(&e)));
            return;
        }
        let mut env = self.blocks.pop().unwrap_or_default();
        self.env.render_into(&mut env);
        let token = self.table.begin(uid, Accepted { creds, connnum });
        // The spawner closes `conn` once the child has it: the server
        // keeps no copy.
        self.spawner.submit(Job { token, conn, env });
        if let Some(e) = self.spawner.take_shortfall() {
            self.log.warn(format_args!(
                "unable to start another spawner thread ({} running): {}",
                self.spawner.threads(),
                Os(&e)
            ));
        }
    }

    /// Before a `-C` denial: a child of `uid` may have exited already,
    /// its SIGCHLD not read yet, or its spawn not reported yet (the
    /// spawner's thread not run since the exec). Such a child no longer
    /// counts: take the reports and reap, waiting up to `REPORT_WAIT` for
    /// reports of this uid's spawns in flight, once per spawn.
    fn settle_uid(&mut self, uid: libc::uid_t) {
        self.take_reports();
        self.reap();
        let Some(round) = self.table.await_uid(uid) else {
            return;
        };
        let deadline = Instant::now() + REPORT_WAIT;
        while self.table.awaiting(round) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let mut fds = [PollFd::new(self.spawner.fd(), PollFlags::POLLIN)];
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            match poll(&mut fds, timeout) {
                Ok(_) | Err(Errno::EINTR) => {
                    self.take_reports();
                    self.reap();
                }
                Err(_) => return,
            }
        }
    }

    fn set_env(&mut self, creds: Option<Credentials>, connnum: u32) -> std::io::Result<()> {
        let v = &self.vars;
        match creds {
            Some(c) => {
                self.env.set_with(v.euid, |b| write!(b, "{}", c.uid))?;
                self.env.set_with(v.egid, |b| write!(b, "{}", c.gid))?;
                match c.pid {
                    Some(pid) => self.env.set_with(v.pid, |b| write!(b, "{pid}"))?,
                    None => self.env.unset(v.pid),
                }
                match self.groups.get().filter(|list| fits_in_env(list)) {
                    Some(list) => self.env.set_with(v.gidlist, |b| {
                        for (i, g) in list.iter().enumerate() {
                            if i > 0 {
                                b.push(b',');
                            }
                            write!(b, "{g}")?;
                        }
                        Ok(())
                    })?,
                    None => self.env.unset(v.gidlist),
                }
                self.env.set_with(v.connnum, |b| write!(b, "{connnum}"))?;
            }
            None => {
                self.env.unset(v.euid);
                self.env.unset(v.egid);
                self.env.unset(v.pid);
                self.env.unset(v.gidlist);
                self.env.set(v.connnum, b"")?;
            }
        }
        let path = self.vars.path;
        match self.peer.remote() {
            RemoteAddr::Unnamed => self.env.set(path, b""),
            RemoteAddr::Path(p) => self.env.set(path, p),
            abstract_name => self.env.set_with(path, |b| {
                abstract_name.write_env_value(b);
                Ok(())
            }),
        }
    }
}

/// The longest environment string an exec takes on Linux (`MAX_ARG_STRLEN`,
/// 32 pages), the least of the systems: a longer one would make every
/// spawn for the client fail (`E2BIG`).
const MAX_ENV_STRING: usize = 32 * 4096;

/// Whether `IPCREMOTEGIDLIST=` with `list` fits in one environment string;
/// a list that does not (some 20,000 groups) is left unknown.
fn fits_in_env(list: &[libc::gid_t]) -> bool {
    let digits = |g: libc::gid_t| g.checked_ilog10().unwrap_or(0) as usize + 1;
    // Each gid with its comma, the last one's standing for the NUL.
    let len = "IPCREMOTEGIDLIST=".len() + list.iter().map(|&g| digits(g) + 1).sum::<usize>();
    len <= MAX_ENV_STRING
}

/// Sends a child what it is owed. One that already exited and is not
/// reaped yet is fine.
fn signal(pid: libc::pid_t, owed: Owed) {
    let pid = Pid::from_raw(pid);
    if owed.term_cont {
        let _ = kill(pid, Signal::SIGTERM);
        let _ = kill(pid, Signal::SIGCONT);
    }
    if owed.kill {
        let _ = kill(pid, Signal::SIGKILL);
    }
}

/// A number, or `?` when it is not known (`-P`).
struct Id<T>(Option<T>);

impl<T: std::fmt::Display> std::fmt::Display for Id<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => v.fmt(f),
            None => f.write_str("?"),
        }
    }
}

fn ids(creds: Option<Credentials>) -> (Id<u32>, Id<u32>) {
    (Id(creds.map(|c| c.uid)), Id(creds.map(|c| c.gid)))
}

#[cfg(test)]
mod gidlist_tests {
    use super::fits_in_env;

    #[test]
    fn a_group_list_too_long_for_an_exec_is_left_unknown() {
        assert!(fits_in_env(&[]));
        assert!(fits_in_env(&(0..65536).collect::<Vec<_>>()[..20_000]));
        // 30,000 gids of 6 digits: 210,000 bytes, over 128 KiB.
        assert!(!fits_in_env(&vec![100_000; 30_000]));
        // The boundary, counted: 17 bytes of name, then "9," per gid, the
        // last comma standing for the NUL: 131,071 bytes fit, 131,073 not.
        let n = (super::MAX_ENV_STRING - 17) / 2;
        assert!(fits_in_env(&vec![9; n]));
        assert!(!fits_in_env(&vec![9; n + 1]));
    }
}
