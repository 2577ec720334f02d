//! Rules in a directory (`-i rulesdir`): the rule for key K is the
//! directory `rulesdir/K`, holding `allow` or `deny`, and for an allow an
//! optional `env` directory (s6-envdir format) and `exec` file. The same
//! reading serves the compiler, which differs in a few places, each marked
//! by `Mode`.

use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::cdb::read_at_most;
use super::value::{MAX_ENV_FILE_READ, MAX_EXEC_LEN};
use super::{Allow, Backend, Decision, EnvChange, RulesError};

/// Who is reading: the C s6-ipcserver-access and s6-accessrules-cdb-from-fs
/// do not treat unreadable files alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// s6-ipcserver-access: `allow`, `deny` and `exec` count only if they
    /// can be opened for reading; ENOENT and EACCES mean "not there".
    Lookup,
    /// s6-accessrules-cdb-from-fs: `allow` and `deny` count if they exist
    /// (a mode-000 `allow` compiles as allow when the compiler runs as
    /// nobody), and an unreadable `exec` is an error.
    Compile,
}

#[derive(Clone, Debug)]
pub struct RulesDir {
    root: PathBuf,
}

impl RulesDir {
    pub fn new(root: impl Into<PathBuf>) -> RulesDir {
        RulesDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Backend for RulesDir {
    /// What the C s6-ipcserver-access does, observed running as nobody:
    /// - `K/allow` unreadable (mode 000) or a dangling symlink: the next
    ///   check (`K/deny`, then the next key); `allow` a directory: allow;
    /// - neither `allow` nor `deny`: the next key, not a denial;
    /// - rulesdir missing, or not searchable: no rule for any key (deny,
    ///   logged "No such file or directory");
    /// - `K` a plain file, rulesdir a plain file: fatal, ENOTDIR;
    /// - `allow` and `deny` both readable: allow.
    fn rule(&self, key: &str) -> Result<Option<Decision>, RulesError> {
        read_rule(&self.root.join(key), Mode::Lookup)
    }
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

fn absent(e: &io::Error, mode: Mode) -> bool {
    match errno(e) {
        Some(libc::ENOENT) => true,
        Some(libc::EACCES) => mode == Mode::Lookup,
        _ => false,
    }
}

/// Whether `path` makes the rule: for a lookup it must open for reading,
/// for the compiler it must exist (following symlinks, as access(F_OK)).
fn present(path: &Path, mode: Mode) -> Result<bool, RulesError> {
    let r = match mode {
        Mode::Lookup => File::open(path).map(drop),
        Mode::Compile => fs::metadata(path).map(drop),
    };
    match r {
        Ok(()) => Ok(true),
        Err(e) if absent(&e, mode) => Ok(false),
        Err(e) => Err(RulesError::io(
            if mode == Mode::Lookup {
                "open"
            } else {
                "access"
            },
            path,
            e,
        )),
    }
}

/// The rule in directory `kdir`, or `None` if it has neither `allow` nor
/// `deny`.
pub(crate) fn read_rule(kdir: &Path, mode: Mode) -> Result<Option<Decision>, RulesError> {
    match read_rule_head(kdir, mode)? {
        Some(Decision::Allow(_)) => {}
        other => return Ok(other),
    }
    let env = read_env_dir(&kdir.join("env"))?;
    let exec = read_exec(&kdir.join("exec"), mode)?.map(|(bytes, _)| bytes);
    Ok(Some(Decision::Allow(Allow { env, exec })))
}

/// Allow (with nothing more read yet), deny, or neither.
pub(crate) fn read_rule_head(kdir: &Path, mode: Mode) -> Result<Option<Decision>, RulesError> {
    if present(&kdir.join("allow"), mode)? {
        Ok(Some(Decision::Allow(Allow::default())))
    } else if present(&kdir.join("deny"), mode)? {
        Ok(Some(Decision::Deny))
    } else {
        Ok(None)
    }
}

/// The `exec` file: `None` if absent or empty, else its first 4096 bytes
/// and whether it was cut there (the C compiler warns "possibly truncated"
/// when the file has 4096 bytes or more; the C reader passes execlineb the
/// first 4096 bytes, trailing newline and all, and says nothing).
/// A directory is an error in both (EISDIR, fatal).
pub(crate) fn read_exec(path: &Path, mode: Mode) -> Result<Option<(Vec<u8>, bool)>, RulesError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if absent(&e, mode) => return Ok(None),
        Err(e) => return Err(RulesError::io("open", path, e)),
    };
    let bytes = read_at_most(&mut f, MAX_EXEC_LEN).map_err(|e| RulesError::io("read", path, e))?;
    if bytes.is_empty() {
        return Ok(None);
    }
    let full = bytes.len() == MAX_EXEC_LEN;
    Ok(Some((bytes, full)))
}

/// The `env` directory as s6-envdir reads it, in readdir order; none if it
/// does not exist. Observed in both C programs: names starting with `.` or
/// holding `=` are skipped; any other entry that cannot be read is fatal
/// (a subdirectory: EISDIR; a dangling symlink; a mode-000 file as nobody;
/// `env` a plain file: ENOTDIR; `env` not listable: EACCES).
pub(crate) fn read_env_dir(path: &Path) -> Result<Vec<EnvChange>, RulesError> {
    let rd = match fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if errno(&e) == Some(libc::ENOENT) => return Ok(Vec::new()),
        Err(e) => return Err(RulesError::io("read directory", path, e)),
    };
    let mut env = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| RulesError::io("read directory", path, e))?;
        let name = entry.file_name();
        let name = name.as_bytes();
        if name.first() == Some(&b'.') || name.contains(&b'=') {
            continue;
        }
        let fpath = entry.path();
        let mut f = File::open(&fpath).map_err(|e| RulesError::io("open", &fpath, e))?;
        let bytes = read_at_most(&mut f, MAX_ENV_FILE_READ)
            .map_err(|e| RulesError::io("read", &fpath, e))?;
        env.push(match env_value(&bytes) {
            None => EnvChange::Unset {
                name: name.to_vec(),
            },
            Some(value) => EnvChange::Set {
                name: name.to_vec(),
                value,
            },
        });
    }
    Ok(env)
}

/// An env file's value from its first bytes, as the C programs compile it
/// (checked byte by byte in their output): an empty file unsets (`None`);
/// otherwise the first line, trailing spaces, tabs and CRs removed (not
/// vertical tabs or form feeds), then each NUL made a newline. So `\n`
/// alone and `   ` set the empty string, and `\0\0` sets two newlines.
pub fn env_value(file: &[u8]) -> Option<Vec<u8>> {
    if file.is_empty() {
        return None;
    }
    let line = match file.iter().position(|&b| b == b'\n') {
        Some(n) => &file[..n],
        None => file,
    };
    let keep = line
        .iter()
        .rposition(|&b| !matches!(b, b' ' | b'\t' | b'\r'))
        .map_or(0, |i| i + 1);
    Some(
        line[..keep]
            .iter()
            .map(|&b| if b == 0 { b'\n' } else { b })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{write, TempDir};
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn set(n: &str, v: &[u8]) -> EnvChange {
        EnvChange::Set {
            name: n.into(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn env_values() {
        assert_eq!(env_value(b""), None);
        assert_eq!(env_value(b"\n").unwrap(), b"");
        assert_eq!(env_value(b"  ").unwrap(), b"");
        assert_eq!(env_value(b"hello \n2nd\n").unwrap(), b"hello");
        assert_eq!(env_value(b"line1 \t\r \nline2\n").unwrap(), b"line1");
        assert_eq!(env_value(b"  lead\n").unwrap(), b"  lead");
        assert_eq!(env_value(b"nonl").unwrap(), b"nonl");
        assert_eq!(env_value(b"a\0b  \n").unwrap(), b"a\nb");
        assert_eq!(env_value(b"\0\0").unwrap(), b"\n\n");
        assert_eq!(env_value(b"a\x0b").unwrap(), b"a\x0b");
        assert_eq!(env_value(b"a\x0c").unwrap(), b"a\x0c");
        assert_eq!(env_value(b"a \0").unwrap(), b"a \n");
        assert_eq!(env_value(b"a\0 ").unwrap(), b"a\n");
        assert_eq!(env_value(b"\nsecond\n").unwrap(), b"");
    }

    fn rule(root: &Path, key: &str) -> Result<Option<Decision>, RulesError> {
        RulesDir::new(root).rule(key)
    }

    #[test]
    fn lookup_basics() {
        let t = TempDir::new("dir");
        let r = t.path();
        write(&r.join("uid/0/allow"), b"");
        write(&r.join("uid/0/env/A"), b"hello \n2nd\n");
        write(&r.join("uid/0/env/HOME"), b"");
        write(&r.join("uid/0/env/.dot"), b"x\n");
        write(&r.join("uid/0/env/X=Y"), b"y\n");
        write(&r.join("uid/0/exec"), b"echo hi\n");
        write(&r.join("uid/1/deny"), b"");
        write(&r.join("uid/1/exec"), b"ignored");
        write(&r.join("uid/2/allow"), b"");
        write(&r.join("uid/2/deny"), b"");
        write(&r.join("uid/2/exec"), b"");
        fs::create_dir_all(r.join("uid/3/env")).unwrap();
        write(&r.join("uid/3/whatever"), b"");
        fs::create_dir_all(r.join("uid/4/allow")).unwrap();
        write(&r.join("uid/5/allow"), b"");
        write(&r.join("uid/5/exec"), &vec![b'z'; 5000]);
        write(&r.join("uid/5/env/BIG"), &vec![b'x'; 5000]);

        let Some(Decision::Allow(a)) = rule(r, "uid/0").unwrap() else {
            panic!("uid/0")
        };
        let mut env = a.env.clone();
        env.sort_by(|a, b| a.name().cmp(b.name()));
        assert_eq!(
            env,
            [
                set("A", b"hello"),
                EnvChange::Unset {
                    name: b"HOME".to_vec()
                }
            ]
        );
        assert_eq!(a.exec.as_deref(), Some(&b"echo hi\n"[..]));
        assert_eq!(rule(r, "uid/1").unwrap(), Some(Decision::Deny));
        assert_eq!(
            rule(r, "uid/2").unwrap(),
            Some(Decision::Allow(Allow::default()))
        );
        assert_eq!(rule(r, "uid/3").unwrap(), None);
        assert_eq!(
            rule(r, "uid/4").unwrap(),
            Some(Decision::Allow(Allow::default()))
        );
        assert_eq!(rule(r, "uid/9").unwrap(), None);
        let Some(Decision::Allow(a)) = rule(r, "uid/5").unwrap() else {
            panic!("uid/5")
        };
        assert_eq!(a.exec.unwrap().len(), 4096);
        assert_eq!(a.env, [set("BIG", &[b'x'; 4095])]);
        // A missing rules directory has no rules.
        assert_eq!(rule(&r.join("none"), "uid/0").unwrap(), None);
    }

    #[test]
    fn lookup_errors() {
        let t = TempDir::new("direrr");
        let r = t.path();
        write(&r.join("uid/3"), b"plain file");
        let e = rule(r, "uid/3").unwrap_err();
        assert!(!e.is_bad_rules());
        assert!(e.to_string().contains("uid/3/allow"), "{e}");
        write(&r.join("uid/4/allow"), b"");
        fs::create_dir_all(r.join("uid/4/env/SUB")).unwrap();
        assert!(rule(r, "uid/4").is_err());
        write(&r.join("uid/5/allow"), b"");
        write(&r.join("uid/5/env"), b"not a dir");
        assert!(rule(r, "uid/5").is_err());
        write(&r.join("uid/6/allow"), b"");
        fs::create_dir_all(r.join("uid/6/exec")).unwrap();
        assert!(rule(r, "uid/6").is_err());
        write(&r.join("uid/7/allow"), b"");
        fs::create_dir_all(r.join("uid/7/env")).unwrap();
        symlink("/nonexistent/x", r.join("uid/7/env/DANGLE")).unwrap();
        assert!(rule(r, "uid/7").is_err());
        fs::create_dir_all(r.join("uid/8")).unwrap();
        symlink("/nonexistent/x", r.join("uid/8/allow")).unwrap();
        assert_eq!(rule(r, "uid/8").unwrap(), None);
        // The rules directory itself a file.
        assert!(rule(&r.join("uid/3"), "uid/0").is_err());
    }

    #[test]
    fn unreadable_files() {
        let t = TempDir::new("dirperm");
        let r = t.path();
        write(&r.join("uid/1/allow"), b"");
        write(&r.join("uid/2/allow"), b"");
        write(&r.join("uid/2/deny"), b"");
        write(&r.join("uid/3/allow"), b"");
        write(&r.join("uid/3/exec"), b"prog");
        for f in ["uid/1/allow", "uid/2/allow", "uid/3/exec"] {
            fs::set_permissions(r.join(f), fs::Permissions::from_mode(0o000)).unwrap();
        }
        // As root every file opens; the checks below are for other users.
        if File::open(r.join("uid/1/allow")).is_ok() {
            eprintln!("skipping unreadable_files: running as root");
            return;
        }
        assert_eq!(rule(r, "uid/1").unwrap(), None);
        assert_eq!(rule(r, "uid/2").unwrap(), Some(Decision::Deny));
        assert_eq!(
            rule(r, "uid/3").unwrap(),
            Some(Decision::Allow(Allow::default()))
        );
        assert!(read_exec(&r.join("uid/3/exec"), Mode::Compile).is_err());
        assert_eq!(
            read_rule(&r.join("uid/1"), Mode::Compile).unwrap(),
            Some(Decision::Allow(Allow::default()))
        );
    }
}
