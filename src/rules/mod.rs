//! Access rules as s6 2.11 keeps them: a directory tree (`-i rulesdir`) or
//! the cdb file s6-accessrules-cdb-from-fs compiles from it (`-x rulesfile`).
//! The programs (s6-ipcserver-access and the two converters) sit over this.
//!
//! Every behaviour that mirrors the C s6 is one that was observed by running
//! Debian's s6 2.11.3.2 on crafted trees and cdb files; the observation is
//! written beside the code that follows it.

pub mod cdb;
pub mod convert;
pub mod dir;
pub mod value;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub use cdb::{Cdb, CdbError, CdbMaker};
pub use convert::{cdb_from_fs, fs_from_cdb, CompileReport, Warning};
pub use dir::RulesDir;

/// The mode s6-accessrules-cdb-from-fs gives its output when not told
/// otherwise (it creates the file 0600 and never chmods it).
pub const DEFAULT_CDB_MODE: u32 = 0o600;

/// One change an allowing rule makes to the environment of the program it
/// runs. Names and values are bytes: the rules are files, not text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    /// `NAME=value`. The name may be anything a cdb held, even empty (the C
    /// s6-ipcserver-access passes a cdb entry `=x` through as is); a name
    /// from a directory never contains `=` and never starts with `.`.
    Set { name: Vec<u8>, value: Vec<u8> },
    /// `NAME` is removed from the environment.
    Unset { name: Vec<u8> },
}

impl EnvChange {
    pub fn name(&self) -> &[u8] {
        match self {
            EnvChange::Set { name, .. } | EnvChange::Unset { name } => name,
        }
    }
}

/// What an allowing rule says beyond "allow".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allow {
    /// In the order the rule lists them (a directory's readdir order).
    pub env: Vec<EnvChange>,
    /// The command line to run with `execlineb -Pc` instead of prog; never
    /// empty (an empty or absent `exec` is `None`, as in C). It may hold a
    /// NUL byte: the C program's argv ends it there.
    pub exec: Option<Vec<u8>>,
}

/// The rule found for a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Allow),
    Deny,
}

/// The first rule found, and the key it was found under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Match {
    pub key: String,
    pub decision: Decision,
}

/// A place where rules are looked up by key (`uid/0`, `gid/self`...).
pub trait Backend {
    /// `Ok(None)` when the key has no rule, so the next key is tried.
    fn rule(&self, key: &str) -> Result<Option<Decision>, RulesError>;
}

/// The two rule sources s6-ipcserver-access takes (`-i` and `-x`).
#[derive(Debug)]
pub enum Rules {
    Dir(RulesDir),
    Cdb(RulesCdb),
}

impl Rules {
    /// Nothing is checked now: the C program only fails on a missing
    /// rules directory when it looks a key up, and then as "no rule".
    pub fn dir(path: impl Into<PathBuf>) -> Rules {
        Rules::Dir(RulesDir::new(path))
    }

    /// Reads the whole file now, as the C program maps it at start
    /// (a missing or empty file is fatal there, before any lookup).
    pub fn cdb(path: impl AsRef<Path>) -> Result<Rules, RulesError> {
        Ok(Rules::Cdb(RulesCdb::open(path)?))
    }
}

impl Backend for Rules {
    fn rule(&self, key: &str) -> Result<Option<Decision>, RulesError> {
        match self {
            Rules::Dir(d) => d.rule(key),
            Rules::Cdb(c) => c.rule(key),
        }
    }
}

/// A compiled rules file.
#[derive(Debug)]
pub struct RulesCdb {
    cdb: Cdb,
}

impl RulesCdb {
    pub fn open(path: impl AsRef<Path>) -> Result<RulesCdb, RulesError> {
        Ok(RulesCdb {
            cdb: Cdb::open(path)?,
        })
    }

    pub fn from_cdb(cdb: Cdb) -> RulesCdb {
        RulesCdb { cdb }
    }
}

impl Backend for RulesCdb {
    fn rule(&self, key: &str) -> Result<Option<Decision>, RulesError> {
        match self.cdb.find(key.as_bytes())? {
            None => Ok(None),
            Some(v) => value::decode(v)
                .map(Some)
                .map_err(|problem| RulesError::BadRule {
                    path: self.cdb.path().to_path_buf(),
                    key: key.to_string(),
                    problem,
                }),
        }
    }
}

/// Who is asking, and who we are: what the uid/gid key list is made from.
/// The caller gives its own effective ids (this module has no unsafe code
/// to call geteuid with).
#[derive(Clone, Copy, Debug)]
pub struct UidGidQuery<'a> {
    pub client_uid: u32,
    pub client_gid: u32,
    pub self_euid: u32,
    pub self_egid: u32,
    /// More groups to try, in order, after the client's egid and before
    /// `uid/default` (for a `-g` option; empty for the C behaviour).
    pub extra_gids: &'a [u32],
}

/// The keys tried for a client, in order (the accessrules doc's
/// s6_accessrules_keycheck_uidgid, plus `extra_gids`).
pub fn uidgid_keys(q: &UidGidQuery) -> Vec<String> {
    let mut keys = Vec::with_capacity(5 + q.extra_gids.len());
    if q.client_uid == q.self_euid {
        keys.push("uid/self".to_string());
    }
    keys.push(format!("uid/{}", q.client_uid));
    if q.client_gid == q.self_egid {
        keys.push("gid/self".to_string());
    }
    keys.push(format!("gid/{}", q.client_gid));
    for g in q.extra_gids {
        keys.push(format!("gid/{g}"));
    }
    keys.push("uid/default".to_string());
    keys
}

/// The first rule for the client, or `None` when no key has one. The C
/// program denies in both cases but says why differently at -v2: "deny
/// pid P uid U gid G: Permission denied" for a rule, "...: No such file or
/// directory" for no rule.
pub fn check_uidgid<B: Backend + ?Sized>(
    rules: &B,
    q: &UidGidQuery,
) -> Result<Option<Match>, RulesError> {
    for key in uidgid_keys(q) {
        if let Some(decision) = rules.rule(&key)? {
            return Ok(Some(Match { key, decision }));
        }
    }
    Ok(None)
}

/// Every failure of this module. `Io` and `Cdb` are the system's or the
/// file's fault; `BadRule`, `BadKey` and `EnvTooBig` are the rules'.
#[derive(Debug)]
pub enum RulesError {
    /// A system call on `path` failed; `action` says which ("open", ...).
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The cdb file is not a cdb (or too big to be one).
    Cdb(CdbError),
    /// A cdb value under `key` is not an access rule.
    BadRule {
        path: PathBuf,
        key: String,
        problem: String,
    },
    /// A cdb key that cannot be a rules directory path (fs-from-cdb).
    BadKey { path: PathBuf, key: Vec<u8> },
    /// A rule's env dir compiles to more than `value::MAX_ENV_LEN` bytes;
    /// the C compiler exits 100 for this, 111 for everything else.
    EnvTooBig { path: PathBuf, len: usize },
}

impl RulesError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        RulesError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the rules themselves are wrong, rather than the system.
    pub fn is_bad_rules(&self) -> bool {
        match self {
            RulesError::Io { .. } => false,
            RulesError::Cdb(e) => e.is_corrupt(),
            _ => true,
        }
    }

    /// The C programs' exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            RulesError::EnvTooBig { .. } => 100,
            _ => 111,
        }
    }
}

impl fmt::Display for RulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RulesError::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "unable to {action} {}: {}",
                path.display(),
                crate::error::Os(source)
            ),
            RulesError::Cdb(e) => e.fmt(f),
            RulesError::BadRule { path, key, problem } => {
                write!(f, "bad rule for key {key} in {}: {problem}", path.display())
            }
            RulesError::BadKey { path, key } => write!(
                f,
                "key {} in {} is not a relative path of plain names",
                String::from_utf8_lossy(key).escape_debug(),
                path.display()
            ),
            RulesError::EnvTooBig { path, len } => write!(
                f,
                "{} too big: {len} bytes once compiled, {} at most",
                path.display(),
                value::MAX_ENV_LEN
            ),
        }
    }
}

impl std::error::Error for RulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RulesError::Io { source, .. } => Some(source),
            RulesError::Cdb(e) => Some(e),
            _ => None,
        }
    }
}

impl From<CdbError> for RulesError {
    fn from(e: CdbError) -> Self {
        RulesError::Cdb(e)
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system's temp dir, removed on drop
    /// (no tempfile crate here).
    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new(tag: &str) -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("rules-test-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create test dir");
            TempDir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub fn write(path: &Path, contents: &[u8]) {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir -p");
        }
        std::fs::write(path, contents).expect("write test file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<&'static str, Decision>);

    impl Backend for Map {
        fn rule(&self, key: &str) -> Result<Option<Decision>, RulesError> {
            Ok(self.0.get(key).cloned())
        }
    }

    fn q(uid: u32, gid: u32, extra: &[u32]) -> UidGidQuery<'_> {
        UidGidQuery {
            client_uid: uid,
            client_gid: gid,
            self_euid: 0,
            self_egid: 10,
            extra_gids: extra,
        }
    }

    #[test]
    fn key_order() {
        assert_eq!(
            uidgid_keys(&q(0, 10, &[])),
            ["uid/self", "uid/0", "gid/self", "gid/10", "uid/default"]
        );
        assert_eq!(
            uidgid_keys(&q(5, 6, &[7, 8])),
            ["uid/5", "gid/6", "gid/7", "gid/8", "uid/default"]
        );
        assert_eq!(
            uidgid_keys(&q(u32::MAX, 0, &[]))[0],
            format!("uid/{}", u32::MAX)
        );
    }

    #[test]
    fn first_match_wins_and_deny_stops() {
        let mut m = HashMap::new();
        m.insert("gid/6", Decision::Deny);
        m.insert("gid/7", Decision::Allow(Allow::default()));
        m.insert("uid/default", Decision::Allow(Allow::default()));
        let m = Map(m);
        let r = check_uidgid(&m, &q(5, 6, &[7])).unwrap().unwrap();
        assert_eq!(r.key, "gid/6");
        assert_eq!(r.decision, Decision::Deny);
        let r = check_uidgid(&m, &q(5, 9, &[7])).unwrap().unwrap();
        assert_eq!(r.key, "gid/7");
        let r = check_uidgid(&m, &q(5, 9, &[])).unwrap().unwrap();
        assert_eq!(r.key, "uid/default");
        assert!(check_uidgid(&Map(HashMap::new()), &q(5, 9, &[]))
            .unwrap()
            .is_none());
    }

    #[test]
    fn error_messages_and_codes() {
        let e = RulesError::io(
            "open",
            "/x/allow",
            io::Error::from_raw_os_error(libc::ENOTDIR),
        );
        assert!(e.to_string().starts_with("unable to open /x/allow: "));
        assert!(!e.is_bad_rules());
        assert_eq!(e.exit_code(), 111);
        let e = RulesError::EnvTooBig {
            path: "r/uid/0/env".into(),
            len: 5000,
        };
        assert!(e.is_bad_rules());
        assert_eq!(e.exit_code(), 100);
        assert!(e.to_string().contains("r/uid/0/env too big"));
    }
}
