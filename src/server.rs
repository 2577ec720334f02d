//! The server: start-up in SPEC 2's order, then the event loop. What happens
//! to a connection reads top to bottom in [`Server::serve`].

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use platform::credentials::{self, Credentials};
use platform::signals::Signals;
use platform::socket::{self, BindError, BindOptions, PeerAddr, RemoteAddr};
use platform::spawn::{self, Environ, Program, StandbyVars, Taken, STANDBY_UIDS};

use crate::cli::Config;
use crate::error::Error;
use crate::log::Log;
use crate::table::{ConnectionTable, ANONYMOUS};

/// How long accepting pauses after `accept` failed for lack of resources
/// (EMFILE, ENFILE, ENOBUFS...), unless a child exits first.
const BACKOFF: Duration = Duration::from_millis(100);

/// How often the server looks at a standby child that has not reported
/// (see `check_standby`), in milliseconds.
const STANDBY_CHECK_MS: u16 = 1000;

const TRAPPED: [Signal; 5] = [
    Signal::SIGCHLD,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGABRT,
];

struct Server {
    cfg: Config,
    log: Log,
    listener: OwnedFd,
    signals: Signals,
    program: Program,
    env: Environ,
    /// The per-connection environment variables, prepared once.
    vars: StandbyVars,
    table: ConnectionTable,
    peer: PeerAddr,
    /// Accepting is paused until then after a resource shortage.
    backoff_until: Option<Instant>,
    /// Whether the current resource shortage was already logged.
    shortage_logged: bool,
    /// Arming a standby child failed; the server accepts itself until a
    /// spawn of its own works again.
    arm_failed: bool,
    /// A standby child took a connection: accept what queued behind it.
    drain: bool,
    /// Checks in a row that found a client waiting and the standby child
    /// still waiting too (see `check_standby`).
    standby_stalls: u32,
}

/// Sets up everything and serves until a terminating signal.
pub fn run(cfg: Config) -> Result<(), Error> {
    let log = Log {
        verbosity: cfg.verbosity,
    };
    // Everything that can be prepared without touching the system is, so
    // that the per-connection path only patches it.
    let program =
        Program::new(&cfg.argv).map_err(|e| Error::sys("unable to prepare the program", e))?;
    let mut env = Environ::inherit(&[
        "PROTO",
        "IPCREMOTEEUID",
        "IPCREMOTEEGID",
        "IPCCONNNUM",
        "IPCREMOTEPATH",
    ]);
    let proto = env.slot("PROTO");
    env.set(proto, b"IPC")
        .map_err(|_| Error::Bug("PROTO value"))?;
    let vars = StandbyVars {
        euid: env.slot("IPCREMOTEEUID"),
        egid: env.slot("IPCREMOTEEGID"),
        connnum: env.slot("IPCCONNNUM"),
        path: env.slot("IPCREMOTEPATH"),
    };

    platform::fd::detach_stdio(cfg.notify)
        .map_err(|e| Error::sys("unable to close stdin and stdout", e))?;

    let listener = socket::bind_listener(
        &cfg.path,
        BindOptions {
            replace_socket: cfg.replace_socket,
            perms: cfg.perms,
            backlog: cfg.backlog,
        },
    )
    .map_err(|e| {
        let path = cfg.path.display();
        match e {
            BindError::Sys(call, source) => {
                Error::sys(format!("unable to {call} at {path}"), source)
            }
            other => Error::Refused(format!("{path}: {other}")),
        }
    })?;

    platform::privileges::drop_to(&cfg.target)
        .map_err(|e| Error::sys(format!("unable to drop privileges: {}", e.step), e.source))?;

    let signals =
        Signals::install(&TRAPPED).map_err(|e| Error::sys("unable to trap signals", e))?;
    platform::signals::ignore_sigpipe().map_err(|e| Error::sys("unable to ignore SIGPIPE", e))?;

    let mut server = Server {
        table: ConnectionTable::with_capacity(cfg.maxconn),
        cfg,
        log,
        listener,
        signals,
        program,
        env,
        vars,
        peer: PeerAddr::default(),
        backoff_until: None,
        shortage_logged: false,
        arm_failed: false,
        drain: false,
        standby_stalls: 0,
    };
    server.log.info(format_args!(
        "starting - listening on {}",
        server.cfg.path.display()
    ));
    server.status();
    if server.cfg.notify {
        let mut line = server.cfg.path.as_os_str().as_bytes().to_vec();
        line.push(b'\n');
        platform::fd::notify_and_close_stdout(&line)
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
            if self.may_arm() {
                self.arm();
            }
            let armed = self.program.standby_fd().is_some();
            let accepting =
                !armed && self.table.live() < self.cfg.maxconn && self.backoff_until.is_none();
            let timeout = match self.backoff_until {
                Some(t) => PollTimeout::try_from(t - now).unwrap_or(PollTimeout::MAX),
                // While a standby child waits, look at it now and then.
                None if armed => PollTimeout::from(STANDBY_CHECK_MS),
                None => PollTimeout::NONE,
            };
            let (sig_ready, conn_ready, report_ready) = {
                // The second descriptor is the listener, or, while a
                // standby child waits on it, what that child reports on.
                let second = match self.program.standby_fd() {
                    Some(fd) => fd,
                    None => self.listener.as_fd(),
                };
                let mut fds = [
                    PollFd::new(self.signals.fd(), PollFlags::POLLIN),
                    PollFd::new(second, PollFlags::POLLIN),
                ];
                let n = if accepting || armed { 2 } else { 1 };
                match poll(&mut fds[..n], timeout) {
                    Ok(_) => {}
                    Err(Errno::EINTR) => continue,
                    Err(e) => return Err(Error::sys("unable to poll", e.into())),
                }
                let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
                let second = n == 2 && ready(&fds[1]);
                (ready(&fds[0]), accepting && second, armed && second)
            };
            // A report first: a child that took a connection is in the
            // table before its exit is reaped.
            if report_ready {
                self.take_report();
            }
            if armed && !report_ready && !sig_ready {
                self.check_standby();
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
            // After a standby child took a connection, the server takes
            // what queued behind it itself (many clients at once: one
            // wake-up for all of them), and arms the next standby child
            // once the backlog is empty.
            let drain = std::mem::take(&mut self.drain) && self.backoff_until.is_none();
            if conn_ready || drain {
                self.accept_all();
            }
        }
    }

    /// Handles one caught signal; `Some` ends the server.
    fn on_signal(&mut self, signo: i32) -> Option<Result<(), Error>> {
        match Signal::try_from(signo) {
            Ok(Signal::SIGCHLD) => {
                self.take_report();
                self.reap();
                None
            }
            Ok(Signal::SIGTERM) => {
                self.log.info(format_args!("received SIGTERM, quitting"));
                self.disarm();
                Some(self.exit())
            }
            Ok(Signal::SIGHUP) => {
                self.take_report();
                self.log.info(format_args!(
                    "received SIGHUP, sending SIGTERM+SIGCONT to all connections"
                ));
                self.kill_children(&[Signal::SIGTERM, Signal::SIGCONT]);
                None
            }
            Ok(Signal::SIGQUIT) => {
                self.log.info(format_args!(
                    "received SIGQUIT, sending SIGTERM+SIGCONT to all connections and quitting"
                ));
                self.disarm();
                self.kill_children(&[Signal::SIGTERM, Signal::SIGCONT]);
                Some(self.exit())
            }
            Ok(Signal::SIGABRT) => {
                self.log.info(format_args!(
                    "received SIGABRT, sending SIGKILL to all connections and quitting"
                ));
                self.disarm();
                self.kill_children(&[Signal::SIGKILL]);
                Some(self.exit())
            }
            _ => Some(Err(Error::Bug("an untrapped signal was read"))),
        }
    }

    fn exit(&self) -> Result<(), Error> {
        self.log.info(format_args!("exiting"));
        Ok(())
    }

    fn kill_children(&self, signals: &[Signal]) {
        // A standby child that has accepted but not reported yet is one of
        // the connections already.
        let accepted = self.program.standby_accepted();
        for &sig in signals {
            for pid in self.table.pids().chain(accepted) {
                // A child that already exited and is not reaped yet is fine.
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }

    /// Reaps every child that exited; counts drop at once.
    fn reap(&mut self) {
        loop {
            let (pid, how, code) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, "exitcode", code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid, "signal", sig as i32),
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(e) => {
                    self.log
                        .warn(format_args!("unable to wait for children: {e}"));
                    break;
                }
            };
            // The standby child, whose report (if it made one before it
            // exited) comes first.
            if let Some(report) = self.program.standby_reaped(pid.as_raw()) {
                self.on_report(report);
            }
            // A program that passed the check at spawn time but could not be
            // executed after all (it changed in between) is reported now.
            if let Some(e) = self.program.take_failure(pid.as_raw()) {
                self.log.warn(format_args!(
                    "unable to spawn {}: {e}",
                    self.cfg.argv[0].to_string_lossy()
                ));
            }
            if let Some(uid) = self.table.remove(pid.as_raw()) {
                // A connection ended, so a slot is free: accepting can
                // resume at once. (Not for a standby child that exited
                // after a failed accept: that would end its backoff.)
                self.backoff_until = None;
                self.program.standby_ended(uid);
                if self.log.verbose() {
                    let uid = Id(self.cfg.lookup.then_some(uid));
                    self.log
                        .info(format_args!("end pid {pid} uid {uid} {how} {code}"));
                    self.status();
                }
            }
        }
    }

    /// Whether a standby child may take the next connection: it can do
    /// all that the server would, only when credentials are looked up, no
    /// allow line is logged, there is room, and no uid is at its limit (so
    /// none can be denied: counts only fall until the child reports), for
    /// at most `STANDBY_UIDS` uids.
    fn may_arm(&self) -> bool {
        if !spawn::STANDBY
            || self.arm_failed
            || self.program.standby_fd().is_some()
            || !self.cfg.lookup
            || self.log.verbose()
            || self.backoff_until.is_some()
            || self.table.live() >= self.cfg.maxconn
        {
            return false;
        }
        let mut uids = 0;
        for (_, count) in self.table.per_uid() {
            uids += 1;
            if uids > STANDBY_UIDS || count >= self.cfg.localmaxconn {
                return false;
            }
        }
        true
    }

    fn arm(&mut self) {
        let r = self.program.arm(
            self.listener.as_fd(),
            &mut self.env,
            &self.vars,
            self.table.per_uid(),
        );
        // The server accepts itself instead; a failure to spawn, if that
        // is what it was, is logged then, for the connection it concerns.
        self.arm_failed = r.is_err();
    }

    /// Takes the standby child's report, if it has made one.
    fn take_report(&mut self) {
        if let Some(report) = self.program.standby_report() {
            self.on_report(report);
        }
    }

    fn on_report(&mut self, report: Taken) {
        match report {
            Taken::Connection { pid, uid, .. } => {
                self.shortage_logged = false;
                self.table.insert(pid, uid);
                self.drain = true;
            }
            Taken::CredentialsFailed(e) => {
                self.log
                    .warn(format_args!("unable to get the client's credentials: {e}"));
            }
            Taken::AcceptFailed(e) => self.accept_failed(&e),
        }
    }

    /// A standby child that leaves a client waiting through two checks in a
    /// row is stuck (stopped: SIGSTOP cannot be blocked). It is killed, and
    /// the server accepts itself until a spawn of its own works again, as
    /// after a failed arm.
    fn check_standby(&mut self) {
        let pending = {
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        };
        if !(pending && self.program.standby_waiting()) {
            self.standby_stalls = 0;
            return;
        }
        self.standby_stalls += 1;
        if self.standby_stalls >= 2 {
            self.standby_stalls = 0;
            self.log.warn(format_args!(
                "the standby child does not accept (stopped?): killed; accepting instead"
            ));
            // One that accepted after all reports as usual.
            let _ = self.program.disarm();
            self.arm_failed = true;
        }
    }

    /// Calls the standby child off; one that took a connection already is
    /// one of the connections from now on (SIGQUIT and SIGABRT reach it).
    fn disarm(&mut self) {
        self.take_report();
        if let Some(pid) = self.program.disarm() {
            self.table.insert(pid, ANONYMOUS);
        }
    }

    /// Accepts while there is room, until the backlog is empty.
    fn accept_all(&mut self) {
        while self.table.live() < self.cfg.maxconn {
            match socket::accept(self.listener.as_fd(), &mut self.peer) {
                Ok(conn) => {
                    self.shortage_logged = false;
                    self.serve(conn);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                // The client gave up, or a signal came: try the next one.
                Err(e)
                    if matches!(
                        Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                        Errno::EINTR | Errno::ECONNABORTED | Errno::EPROTO
                    ) => {}
                Err(e) => {
                    self.accept_failed(&e);
                    return;
                }
            }
        }
    }

    /// EMFILE, ENFILE, ENOBUFS, ENOMEM...: retrying now would spin. Pause
    /// until a child exits or a moment passes, and say so once per episode.
    fn accept_failed(&mut self, e: &std::io::Error) {
        if !self.shortage_logged {
            self.log.warn(format_args!(
                "unable to accept, pausing until a connection ends: {e}"
            ));
            self.shortage_logged = true;
        }
        self.backoff_until = Some(Instant::now() + BACKOFF);
    }

    /// One connection: look up, count, spawn, close.
    fn serve(&mut self, conn: OwnedFd) {
        let creds = if self.cfg.lookup {
            match credentials::peer(&conn) {
                Ok(c) => Some(c),
                Err(e) => {
                    self.log
                        .warn(format_args!("unable to get the client's credentials: {e}"));
                    return;
                }
            }
        } else {
            None
        };
        let uid = creds.map_or(ANONYMOUS, |c| c.uid);
        let count = self.table.count(uid);
        if count >= self.cfg.localmaxconn {
            let (u, g) = ids(creds);
            self.log.deny(format_args!(
                "deny {u}:{g} count {count}/{}",
                self.cfg.localmaxconn
            ));
            return;
        }
        if let Err(e) = self.set_env(creds, count + 1) {
            self.log
                .warn(format_args!("unable to set the environment: {e}"));
            return;
        }
        match self.program.spawn(conn.as_fd(), &mut self.env) {
            Ok(pid) => {
                self.arm_failed = false;
                let n = self.table.insert(pid, uid);
                if self.log.verbose() {
                    let (u, g) = ids(creds);
                    let n = Id(self.cfg.lookup.then_some(n));
                    self.log.info(format_args!(
                        "allow {u}:{g} pid {pid} count {n}/{}",
                        self.cfg.localmaxconn
                    ));
                    self.status();
                }
            }
            Err(e) => {
                self.log.warn(format_args!(
                    "unable to spawn {}: {e}",
                    self.cfg.argv[0].to_string_lossy()
                ));
            }
        }
        // `conn` is dropped here: the server keeps no copy.
    }

    fn set_env(&mut self, creds: Option<Credentials>, connnum: u32) -> std::io::Result<()> {
        let v = &self.vars;
        match creds {
            Some(c) => {
                self.env.set_with(v.euid, |b| write!(b, "{}", c.uid))?;
                self.env.set_with(v.egid, |b| write!(b, "{}", c.gid))?;
                self.env.set_with(v.connnum, |b| write!(b, "{connnum}"))?;
            }
            None => {
                self.env.unset(v.euid);
                self.env.unset(v.egid);
                self.env.set(v.connnum, b"")?;
            }
        }
        let path = self.vars.path;
        match self.peer.remote() {
            RemoteAddr::Unnamed => self.env.set(path, b""),
            RemoteAddr::Path(p) => self.env.set(path, p),
            // Abstract names may hold NUL bytes, which no environment can:
            // they are shown as `ss` shows them, '@' first and for each NUL.
            RemoteAddr::Abstract(name) => self.env.set_with(path, |b| {
                b.push(b'@');
                b.extend(name.iter().map(|&c| if c == 0 { b'@' } else { c }));
                Ok(())
            }),
        }
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
