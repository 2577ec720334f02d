//! The listening socket: binding with an exact mode, listening, and
//! accepting with close-on-exec set and the client's bound path read back.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use socket2::{Domain, SockAddr, Socket, Type};

use crate::cvt;

/// The system's default listen backlog.
pub const SOMAXCONN: u32 = libc::SOMAXCONN as u32;

/// The longest path `sun_path` can hold, its terminating NUL excluded.
pub fn max_path_len() -> usize {
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let addr: libc::sockaddr_un = unsafe { mem::zeroed() };
    addr.sun_path.len() - 1
}

/// Why the server refuses to bind.
#[derive(Debug)]
pub enum BindError {
    /// `path` is longer than `sun_path` allows.
    PathTooLong { len: usize, max: usize },
    /// `path` exists and is not a socket: it is never removed.
    NotASocket(&'static str),
    /// Another server holds the lock on `PATH.lock`, named here.
    Busy(std::path::PathBuf),
    /// A system call failed; the string names it.
    Sys(&'static str, io::Error),
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::PathTooLong { len, max } => write!(
                f,
                "path is {len} bytes long, longer than the {max} bytes a Unix socket address holds"
            ),
            BindError::NotASocket(what) => {
                write!(
                    f,
                    "path exists and is {what}, not a socket: refusing to remove it"
                )
            }
            BindError::Busy(lock) => write!(
                f,
                "another server holds the lock on {} and serves this socket: Device or resource busy",
                lock.display()
            ),
            BindError::Sys(call, e) => write!(f, "unable to {call}: {e}"),
        }
    }
}

/// How to bind.
#[derive(Debug, Clone, Copy)]
pub struct BindOptions {
    /// Remove an existing socket at the path first (`-d`).
    pub replace_socket: bool,
    /// The exact mode of the socket file (`-a`).
    pub perms: u32,
    pub backlog: u32,
    /// Whether to listen (the binder's `-b 0` does not).
    pub listen: bool,
    /// `SOCK_DGRAM` instead of `SOCK_STREAM` (the binder's `-m`).
    pub datagram: bool,
    /// Leave the socket non-blocking (the server's, the binder's unless
    /// `-B`).
    pub nonblocking: bool,
}

impl BindOptions {
    /// A listening, non-blocking stream socket: what a server serves.
    pub fn listener(replace_socket: bool, perms: u32, backlog: u32) -> BindOptions {
        BindOptions {
            replace_socket,
            perms,
            backlog,
            listen: true,
            datagram: false,
            nonblocking: true,
        }
    }
}

fn describe(ft: fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a named pipe"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "a regular file"
    }
}

/// A bound, listening socket, and with `-d` the lock that says so.
#[derive(Debug)]
pub struct Bound {
    pub listener: OwnedFd,
    /// Held for as long as the server serves; closing it releases it.
    pub lock: Option<OwnedFd>,
}

/// Takes the write lock on `PATH.lock` that the C s6's binder takes while
/// it replaces a socket (an fcntl lock on the whole file, which is
/// created with mode 0600 if need be): a second server started on the
/// same path then fails instead of silently taking over the first one's
/// clients. The file is opened non-blocking and never through a symbolic
/// link, and must be a regular file; it is never removed.
///
/// `None` where the directory does not exist: there is no socket to
/// protect, and binding fails with the reason.
fn lock_path(path: &Path) -> Result<Option<OwnedFd>, BindError> {
    let mut name = path.as_os_str().to_os_string();
    name.push(".lock");
    let file = match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        // Never through a symbolic link: the server may still be root, and
        // the socket's directory writable by others.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(&name)
    {
        Ok(file) if file.metadata().is_ok_and(|m| m.is_file()) => file,
        Ok(_) => {
            return Err(BindError::Sys(
                "use the .lock file of the socket",
                io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BindError::Sys("create the .lock file of the socket", e)),
    };
    let lock = libc::flock {
        l_type: libc::F_WRLCK as _,
        l_whence: libc::SEEK_SET as _,
        l_start: 0,
        l_len: 0,
        // SAFETY: the remaining fields are plain integers; zero is valid.
        ..unsafe { mem::zeroed() }
    };
    loop {
        // SAFETY: `lock` is a live flock record; F_SETLK only reads it.
        match cvt(unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &lock) }) {
            Ok(_) => return Ok(Some(file.into())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EAGAIN)) => {
                return Err(BindError::Busy(name.into()))
            }
            Err(e) => return Err(BindError::Sys("lock the .lock file of the socket", e)),
        }
    }
}

/// Creates a close-on-exec Unix socket bound to `path` with mode exactly
/// `perms`, listening and non-blocking as `opts` say. With
/// `replace_socket`, first takes the lock on `PATH.lock` ([`lock_path`]).
pub fn bind_listener(path: &Path, opts: BindOptions) -> Result<Bound, BindError> {
    let bytes = path.as_os_str().as_bytes();
    let max = max_path_len();
    if bytes.len() > max {
        return Err(BindError::PathTooLong {
            len: bytes.len(),
            max,
        });
    }
    let lock = if opts.replace_socket {
        // What is at the path is told first: the lock is for a socket.
        if let Ok(md) = fs::symlink_metadata(path) {
            if !md.file_type().is_socket() {
                return Err(BindError::NotASocket(describe(md.file_type())));
            }
        }
        lock_path(path)?
    } else {
        None
    };
    if opts.replace_socket {
        match fs::symlink_metadata(path) {
            Ok(md) if md.file_type().is_socket() => {
                fs::remove_file(path).map_err(|e| BindError::Sys("remove the old socket", e))?
            }
            Ok(md) => return Err(BindError::NotASocket(describe(md.file_type()))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(BindError::Sys("stat the path", e)),
        }
    }
    let addr = SockAddr::unix(path).map_err(|e| BindError::Sys("make a socket address", e))?;
    // socket2 sets close-on-exec atomically where the system can, with
    // fcntl elsewhere.
    let ty = if opts.datagram {
        Type::DGRAM
    } else {
        Type::STREAM
    };
    let socket =
        Socket::new(Domain::UNIX, ty, None).map_err(|e| BindError::Sys("create a socket", e))?;

    // The socket file is created with mode 0777 & ~umask: binding under a
    // umask of exactly 0777 & ~perms gives it `perms`, atomically. A chmod
    // afterwards would leave a moment with the caller's mode and would
    // follow a symlink swapped in at `path`.
    let mask = (0o777 & !opts.perms) as libc::mode_t;
    // SAFETY: umask only swaps the process's file mode creation mask; the
    // server is single-threaded during start-up.
    let old = unsafe { libc::umask(mask) };
    let bound = socket.bind(&addr);
    // SAFETY: as above, restores the previous mask.
    unsafe { libc::umask(old) };
    bound.map_err(|e| BindError::Sys("bind", e))?;
    if opts.listen {
        let backlog = i32::try_from(opts.backlog).unwrap_or(i32::MAX);
        socket
            .listen(backlog)
            .map_err(|e| BindError::Sys("listen", e))?;
    }
    if opts.nonblocking {
        socket
            .set_nonblocking(true)
            .map_err(|e| BindError::Sys("set the socket non-blocking", e))?;
    }
    Ok(Bound {
        listener: socket.into(),
        lock,
    })
}

/// Why an inherited descriptor cannot be served.
#[derive(Debug)]
pub enum InheritError {
    NotOpen,
    NotASocket,
    NotUnix,
    NotStream,
    NotListening,
    /// A system call failed; the string names it.
    Sys(&'static str, io::Error),
}

impl std::fmt::Display for InheritError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            InheritError::NotOpen => "is not open",
            InheritError::NotASocket => "is not a socket",
            InheritError::NotUnix => "is not a Unix domain socket",
            InheritError::NotStream => "is not a stream socket",
            InheritError::NotListening => "is not a listening socket",
            InheritError::Sys(call, _) => call,
        })
    }
}

/// Takes over the listening Unix stream socket on `fd` (stdin, or fd 3
/// under socket activation), which some other program bound: returns a
/// close-on-exec copy of it numbered 3 or above, so that no child can
/// inherit it. Its file status flags are left as they are: the copy shares
/// them with every other holder of the socket (a descriptor holder, the
/// service manager, the next server), so the server accepts only once
/// poll(2) says a client waits. On a blocking socket that another process
/// accepts from at the same time, that accept can still wait for the next
/// client; a socket served by one process at a time cannot. `fd`
/// itself is replaced by a placeholder if it is above 2; fds 0 to 2 are
/// left for [`crate::fd::detach_stdio`] to fill.
pub fn take_listener(fd: RawFd) -> Result<OwnedFd, InheritError> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) only reads the descriptor table.
    let copy = match cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) }) {
        Ok(copy) => copy,
        Err(e) if e.raw_os_error() == Some(libc::EBADF) => return Err(InheritError::NotOpen),
        Err(e) => return Err(InheritError::Sys("unable to duplicate it", e)),
    };
    // SAFETY: a descriptor just made and owned by no one else.
    let copy = unsafe { OwnedFd::from_raw_fd(copy) };
    let st = nix::sys::stat::fstat(&copy)
        .map_err(|e| InheritError::Sys("unable to stat it", e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(InheritError::NotASocket);
    }
    let socket = socket2::SockRef::from(&copy);
    let addr = socket
        .local_addr()
        .map_err(|e| InheritError::Sys("unable to read its address", e))?;
    if addr.domain() != Domain::UNIX {
        return Err(InheritError::NotUnix);
    }
    let ty = socket
        .r#type()
        .map_err(|e| InheritError::Sys("unable to read its type", e))?;
    if ty != Type::STREAM {
        return Err(InheritError::NotStream);
    }
    // Starting from 0, "not listening", should the call succeed without
    // writing.
    // SAFETY: SO_ACCEPTCONN writes an int (socket(7), getsockopt(2)).
    let listening: libc::c_int =
        unsafe { crate::sys::getsockopt(copy.as_fd(), libc::SOL_SOCKET, libc::SO_ACCEPTCONN, 0) }
            .map_err(|e| InheritError::Sys("unable to tell whether it listens", e))?;
    if listening == 0 {
        return Err(InheritError::NotListening);
    }
    if fd > 2 {
        // The number stays occupied (fd::reserve_inherited), by a
        // close-on-exec placeholder; the copy above stays open.
        crate::fd::placeholder_onto(fd)
            .map_err(|e| InheritError::Sys("unable to release the inherited number", e))?;
    }
    Ok(copy)
}

/// The address a client's socket is bound to.
#[derive(Debug, PartialEq, Eq)]
pub enum RemoteAddr<'a> {
    /// The client did not bind its socket (the common case).
    Unnamed,
    /// A filesystem path, byte for byte.
    Path(&'a [u8]),
    /// A Linux abstract name, without its leading NUL byte.
    Abstract(&'a [u8]),
}

impl RemoteAddr<'_> {
    /// Appends the address as an environment variable holds it
    /// (`IPCREMOTEPATH`, `IPCLOCALPATH`): a path as it is, nothing for an
    /// unnamed socket; abstract names may hold NUL bytes, which no
    /// environment can, so they are shown as `ss` shows them, '@' first
    /// and for each NUL.
    pub fn write_env_value(&self, out: &mut Vec<u8>) {
        match self {
            RemoteAddr::Unnamed => {}
            RemoteAddr::Path(p) => out.extend_from_slice(p),
            RemoteAddr::Abstract(name) => {
                out.push(b'@');
                out.extend(name.iter().map(|&c| if c == 0 { b'@' } else { c }));
            }
        }
    }
}

/// The address `fd` is bound to (getsockname(2)), read into `addr`:
/// s6-ipcserver-access's `IPCLOCALPATH`, from the connection on its stdin.
pub fn local_addr(fd: BorrowedFd<'_>, addr: &mut PeerAddr) -> io::Result<()> {
    addr.len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let storage = (&mut addr.storage as *mut libc::sockaddr_un).cast::<libc::sockaddr>();
    // SAFETY: `storage` and `addr.len` describe writable storage of the
    // stated size; `fd` is a live descriptor. A non-Unix socket's address
    // longer than the storage is cut to it, and its family is checked
    // below.
    cvt(unsafe { libc::getsockname(fd.as_raw_fd(), storage, &mut addr.len) })?;
    if addr.storage.sun_family as libc::c_int != libc::AF_UNIX {
        addr.len = 0;
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a Unix domain socket",
        ));
    }
    Ok(())
}

/// Storage for the peer address that `accept` fills in; reused across
/// connections so the per-connection path allocates nothing.
pub struct PeerAddr {
    storage: libc::sockaddr_un,
    len: libc::socklen_t,
}

impl Default for PeerAddr {
    fn default() -> Self {
        PeerAddr {
            // SAFETY: sockaddr_un is plain old data; all zeroes is valid.
            storage: unsafe { mem::zeroed() },
            len: 0,
        }
    }
}

impl PeerAddr {
    pub fn remote(&self) -> RemoteAddr<'_> {
        let offset = self.path_offset();
        let len = (self.len as usize).saturating_sub(offset);
        // SAFETY: sun_path is an array of c_char; viewing it as bytes is
        // sound, and `len` is clamped to its size below.
        let path: &[u8] = unsafe {
            std::slice::from_raw_parts(
                self.storage.sun_path.as_ptr().cast(),
                self.storage.sun_path.len(),
            )
        };
        let path = &path[..len.min(path.len())];
        match path.first() {
            None => RemoteAddr::Unnamed,
            Some(0) if cfg!(any(target_os = "linux", target_os = "android")) => {
                RemoteAddr::Abstract(&path[1..])
            }
            Some(0) => RemoteAddr::Unnamed,
            Some(_) => {
                // A pathname stops at the first NUL, if the kernel counted one.
                let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
                RemoteAddr::Path(&path[..end])
            }
        }
    }

    fn path_offset(&self) -> usize {
        let base = &self.storage as *const libc::sockaddr_un as usize;
        let field = self.storage.sun_path.as_ptr() as usize;
        field - base
    }
}

/// Accepts one connection from the non-blocking `listener`. The new
/// descriptor is close-on-exec and blocking, whatever the listener is.
pub fn accept(listener: BorrowedFd<'_>, peer: &mut PeerAddr) -> io::Result<OwnedFd> {
    peer.len = mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    let addr = (&mut peer.storage as *mut libc::sockaddr_un).cast::<libc::sockaddr>();
    cfg_if::cfg_if! {
        if #[cfg(target_vendor = "apple")] {
            // No accept4 here; and the new socket inherits O_NONBLOCK.
            // SAFETY: `addr` and `peer.len` describe writable storage of the
            // stated size; `listener` is a live descriptor.
            let fd = cvt(unsafe { libc::accept(listener.as_raw_fd(), addr, &mut peer.len) })?;
            // SAFETY: accept succeeded: `fd` is a new descriptor we own.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            crate::fd::set_cloexec(std::os::fd::AsFd::as_fd(&fd), true)?;
            crate::fd::set_nonblocking(std::os::fd::AsFd::as_fd(&fd), false)?;
            Ok(fd)
        } else {
            // accept4 never makes the new socket non-blocking unless asked.
            // SAFETY: `addr` and `peer.len` describe writable storage of the
            // stated size; `listener` is a live descriptor.
            let fd = cvt(unsafe {
                libc::accept4(listener.as_raw_fd(), addr, &mut peer.len, libc::SOCK_CLOEXEC)
            })?;
            // SAFETY: accept4 succeeded: `fd` is a new descriptor we own.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    }
}

/// Which step of [`connect`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStep {
    Bind,
    Connect,
}

/// Why [`connect`] failed.
#[derive(Debug)]
pub struct ConnectError {
    pub step: ConnectStep,
    pub source: io::Error,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let step = match self.step {
            ConnectStep::Bind => "bind",
            ConnectStep::Connect => "connect",
        };
        write!(f, "unable to {step}: {}", self.source)
    }
}

impl From<ConnectError> for io::Error {
    fn from(e: ConnectError) -> io::Error {
        e.source
    }
}

/// A blocking, close-on-exec stream socket connected to `path`, bound to
/// `bind` first if given (s6-ipcclient's `-p`; the file it creates is
/// never removed).
pub fn connect(path: &OsStr, bind: Option<&OsStr>) -> Result<OwnedFd, ConnectError> {
    let at = |step| move |source| ConnectError { step, source };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(at(ConnectStep::Connect))?;
    if let Some(b) = bind {
        let addr = SockAddr::unix(b).map_err(at(ConnectStep::Bind))?;
        socket.bind(&addr).map_err(at(ConnectStep::Bind))?;
    }
    let addr = SockAddr::unix(path).map_err(at(ConnectStep::Connect))?;
    socket.connect(&addr).map_err(at(ConnectStep::Connect))?;
    Ok(socket.into())
}
