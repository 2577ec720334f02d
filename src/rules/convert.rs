//! The two converters: a rules directory compiled into a cdb file, as
//! s6-accessrules-cdb-from-fs does (same bytes on the same tree), and a
//! cdb file decompiled into a new directory, as s6-accessrules-fs-from-cdb
//! does (with the differences said at `fs_from_cdb`).

use std::fmt;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::cdb::{write_atomic, Cdb, CdbMaker};
use super::dir::{read_env_dir, read_exec, Mode};
use super::value::{self, MAX_ENV_LEN};
use super::{Allow, Decision, EnvChange, RulesError};

/// Something the compiler let pass but the user should hear of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Warning {
    /// An `exec` file of 4096 bytes or more, cut to 4096 (the C message is
    /// "possibly truncated file PATH").
    ExecTruncated(PathBuf),
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::ExecTruncated(p) => write!(f, "possibly truncated file {}", p.display()),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileReport {
    /// Rules written (key directories with `allow` or `deny`).
    pub rules: usize,
    pub warnings: Vec<Warning>,
}

/// Compiles rules directory `dir` into `cdbfile`, created with permissions
/// `mode` (`DEFAULT_CDB_MODE` is the C default), replacing it atomically.
///
/// Observed of the C compiler, and done the same way here:
/// - every `dir/T/K` is compiled under key `T/K`, whatever T is (`uid`,
///   `gid`, `ip4`, `foo`...); names starting with `.` are skipped at both
///   levels; records are in readdir order, hence identical output;
/// - a plain file at either level is fatal (exit 111: "unable to opendir
///   dir/README", "unable to access dir/uid/file/allow: Not a directory");
///   symlinks are followed; a K with neither `allow` nor `deny` (or a
///   dangling `allow`) is left out;
/// - `allow` counts if it exists, even unreadable; `deny` with `env` or
///   `exec` compiles to plain `D`;
/// - an unreadable env file or `exec`, or a directory in their place, is
///   fatal; an env over `MAX_ENV_LEN` bytes is `EnvTooBig` (exit 100).
pub fn cdb_from_fs(dir: &Path, cdbfile: &Path, mode: u32) -> Result<CompileReport, RulesError> {
    let mut maker = CdbMaker::new();
    let mut report = CompileReport::default();
    for (tname, tdir) in subdirs(dir)? {
        for (kname, kdir) in subdirs(&tdir)? {
            let Some(rule) = compile_rule(&kdir, &mut report.warnings)? else {
                continue;
            };
            let key = [&tname[..], b"/", &kname[..]].concat();
            let v = value::encode(&rule).map_err(|problem| RulesError::BadRule {
                path: kdir.clone(),
                key: String::from_utf8_lossy(&key).into_owned(),
                problem,
            })?;
            maker.add(&key, &v, cdbfile)?;
            report.rules += 1;
        }
    }
    write_atomic(cdbfile, &maker.finish(), mode)?;
    Ok(report)
}

/// The entries of `dir` not starting with `.`, in readdir order: name and
/// path.
fn subdirs(dir: &Path) -> Result<Vec<(Vec<u8>, PathBuf)>, RulesError> {
    let rd = fs::read_dir(dir).map_err(|e| RulesError::io("open directory", dir, e))?;
    let mut v = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| RulesError::io("read directory", dir, e))?;
        let name = entry.file_name().as_bytes().to_vec();
        if name.first() != Some(&b'.') {
            v.push((name, entry.path()));
        }
    }
    Ok(v)
}

fn compile_rule(kdir: &Path, warnings: &mut Vec<Warning>) -> Result<Option<Decision>, RulesError> {
    let Some(decision) = super::dir::read_rule_head(kdir, Mode::Compile)? else {
        return Ok(None);
    };
    if decision == Decision::Deny {
        return Ok(Some(Decision::Deny));
    }
    let envdir = kdir.join("env");
    let env = read_env_dir(&envdir)?;
    let len = value::env_len(&env);
    if len > MAX_ENV_LEN {
        return Err(RulesError::EnvTooBig { path: envdir, len });
    }
    let exec_path = kdir.join("exec");
    let exec = match read_exec(&exec_path, Mode::Compile)? {
        None => None,
        Some((bytes, cut)) => {
            if cut {
                warnings.push(Warning::ExecTruncated(exec_path));
            }
            Some(bytes)
        }
    };
    Ok(Some(Decision::Allow(Allow { env, exec })))
}

/// Decompiles `cdbfile` into `dir`, which must not exist; on failure the
/// partial tree is removed. Directories are made 0755 whatever the umask
/// (as the C program's are), files 0666 less the umask.
///
/// Each record becomes `dir/KEY/allow` or `dir/KEY/deny` (an empty file),
/// `dir/KEY/env/NAME` (the value and a newline; empty to unset), and
/// `dir/KEY/exec` (the bytes as they are). Two records with one key leave
/// both `allow` and `deny` there, as C does (and the directory means allow).
///
/// Differences from the C program, all about data it mishandles:
/// - a key with an empty, `.` or `..` component, or a leading `/`, is
///   refused (C writes `../x/y` outside `dir`, and `` as `dir/deny`);
/// - a value that is neither `A...` nor `D` is refused (C makes an empty
///   rule directory and succeeds); a short file is refused (C: empty dir);
/// - a newline in an env value is written as a NUL byte, which the
///   directory reader turns back into a newline (C writes the newline, and
///   the value read back stops there);
/// - an env name that is not a file name (`/`, `.`, `..`) or is empty is
///   refused, with a message (C fails too, less clearly).
pub fn fs_from_cdb(dir: &Path, cdbfile: &Path) -> Result<(), RulesError> {
    let cdb = Cdb::open(cdbfile)?;
    DirBuilder::new()
        .mode(0o755)
        .create(dir)
        .map_err(|e| RulesError::io("mkdir", dir, e))?;
    // From here on, a failure removes what was made of `dir`, itself too.
    let chmod = fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| RulesError::io("chmod", dir, e));
    let r = chmod.and_then(|()| {
        cdb.iter().try_for_each(|rec| -> Result<(), RulesError> {
            let (key, data) = rec?;
            let kdir = key_dir(dir, key, cdbfile)?;
            let decision = value::decode_strict(data).map_err(|problem| RulesError::BadRule {
                path: cdbfile.to_path_buf(),
                key: String::from_utf8_lossy(key).into_owned(),
                problem,
            })?;
            write_rule(&kdir, &decision, key, cdbfile)
        })
    });
    if r.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    r
}

fn mkdir_0755(path: &Path) -> Result<(), RulesError> {
    DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| RulesError::io("mkdir", path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| RulesError::io("chmod", path, e))
}

/// `dir/KEY`, created with its parents under `dir` (which exists).
fn key_dir(dir: &Path, key: &[u8], cdbfile: &Path) -> Result<PathBuf, RulesError> {
    let bad = || RulesError::BadKey {
        path: cdbfile.to_path_buf(),
        key: key.to_vec(),
    };
    let mut p = dir.to_path_buf();
    for part in key.split(|&b| b == b'/') {
        if !is_file_name(part) {
            return Err(bad());
        }
        p.push(std::ffi::OsStr::from_bytes(part));
        match fs::symlink_metadata(&p) {
            // Only ever a directory this run made: nothing else is written
            // at a key's level but allow, deny, env and exec.
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(RulesError::io(
                    "mkdir",
                    &p,
                    io::Error::from_raw_os_error(libc::EEXIST),
                ))
            }
            Err(_) => mkdir_0755(&p)?,
        }
    }
    Ok(p)
}

fn is_file_name(part: &[u8]) -> bool {
    !part.is_empty() && part != b"." && part != b".." && !part.contains(&0) && !part.contains(&b'/')
}

fn write_rule(kdir: &Path, d: &Decision, key: &[u8], cdbfile: &Path) -> Result<(), RulesError> {
    let allow = match d {
        Decision::Deny => return write_file(&kdir.join("deny"), b""),
        Decision::Allow(a) => a,
    };
    write_file(&kdir.join("allow"), b"")?;
    if !allow.env.is_empty() {
        let envdir = kdir.join("env");
        if fs::symlink_metadata(&envdir).is_err() {
            mkdir_0755(&envdir)?;
        }
        for change in &allow.env {
            let name = change.name();
            if !is_file_name(name) {
                return Err(RulesError::BadRule {
                    path: cdbfile.to_path_buf(),
                    key: String::from_utf8_lossy(key).into_owned(),
                    problem: format!(
                        "env name {} is not a file name",
                        String::from_utf8_lossy(name).escape_debug()
                    ),
                });
            }
            let fpath = envdir.join(std::ffi::OsStr::from_bytes(name));
            match change {
                EnvChange::Unset { .. } => write_file(&fpath, b"")?,
                EnvChange::Set { value, .. } => {
                    let mut v: Vec<u8> = value
                        .iter()
                        .map(|&b| if b == b'\n' { 0 } else { b })
                        .collect();
                    v.push(b'\n');
                    write_file(&fpath, &v)?;
                }
            }
        }
    }
    if let Some(exec) = &allow.exec {
        write_file(&kdir.join("exec"), exec)?;
    }
    Ok(())
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), RulesError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(|e| RulesError::io("create", path, e))?;
    f.write_all(contents)
        .map_err(|e| RulesError::io("write", path, e))
}

#[cfg(test)]
mod tests {
    use super::super::cdb::Cdb;
    use super::super::testutil::{write, TempDir};
    use super::super::{Backend, RulesCdb, RulesDir, DEFAULT_CDB_MODE};
    use super::*;
    use std::process::Command;

    /// The tree the C compiler was first run on, and more.
    fn sample(r: &Path) {
        write(&r.join("uid/0/allow"), b"");
        write(&r.join("uid/0/env/A"), b"hello\n");
        write(&r.join("uid/0/env/B"), b"");
        write(&r.join("uid/0/env/NUL"), b"a\0b  \n");
        write(&r.join("uid/0/env/.hidden"), b"x\n");
        write(&r.join("uid/0/env/X=Y"), b"y\n");
        write(&r.join("uid/0/exec"), b"echo hi");
        write(&r.join("uid/default/deny"), b"");
        write(&r.join("uid/default/exec"), b"not compiled");
        write(&r.join("gid/100/allow"), b"");
        write(&r.join("gid/100/exec"), &vec![b'y'; 5000]);
        write(&r.join("ip4/1.2.3.4_32/allow"), b"");
        write(&r.join("foo/bar/allow"), b"");
        write(&r.join("foo/bar/deny"), b"");
        write(&r.join("uid/.hid/allow"), b"");
        write(&r.join(".top/x/allow"), b"");
        fs::create_dir_all(r.join("uid/nothing/env")).unwrap();
        write(&r.join("uid/7/allow"), b"");
        fs::create_dir_all(r.join("uid/7/env")).unwrap();
    }

    fn records(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
        let c = Cdb::open(path).unwrap();
        let v = c.iter().map(|r| r.map(|(k, d)| (k.to_vec(), d.to_vec())));
        v.collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn compile_and_look_up() {
        let t = TempDir::new("conv");
        let r = t.path().join("r");
        sample(&r);
        let out = t.path().join("r.cdb");
        let rep = cdb_from_fs(&r, &out, DEFAULT_CDB_MODE).unwrap();
        assert_eq!(rep.rules, 6);
        assert_eq!(
            rep.warnings,
            [Warning::ExecTruncated(r.join("gid/100/exec"))]
        );
        assert_eq!(
            fs::metadata(&out).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let mut recs = records(&out);
        recs.sort();
        let keys: Vec<_> = recs
            .iter()
            .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert_eq!(
            keys,
            [
                "foo/bar",
                "gid/100",
                "ip4/1.2.3.4_32",
                "uid/0",
                "uid/7",
                "uid/default"
            ]
        );
        let cdb = RulesCdb::open(&out).unwrap();
        let dir = RulesDir::new(&r);
        for k in [
            "uid/0",
            "uid/7",
            "uid/default",
            "gid/100",
            "foo/bar",
            "uid/nothing",
            "uid/9",
        ] {
            assert_eq!(cdb.rule(k).unwrap(), dir.rule(k).unwrap(), "{k}");
        }
        assert_eq!(cdb.rule("uid/default").unwrap(), Some(Decision::Deny));
    }

    #[test]
    fn compile_errors() {
        let t = TempDir::new("converr");
        let r = t.path().join("r");
        let out = t.path().join("r.cdb");
        fs::write(&out, b"old").unwrap();
        let check = |what: &str| {
            let e = cdb_from_fs(&r, &out, 0o644).unwrap_err();
            assert_eq!(fs::read(&out).unwrap(), b"old", "{what}");
            let left = fs::read_dir(t.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().file_name().len() > "r.cdb".len())
                .count();
            assert_eq!(left, 0, "{what}: temporary left");
            e
        };
        let e = check("missing dir");
        assert!(e.to_string().contains("open directory"), "{e}");
        write(&r.join("README"), b"");
        check("top-level file");
        fs::remove_file(r.join("README")).unwrap();
        write(&r.join("uid/file"), b"");
        let e = check("key-level file");
        assert!(e.to_string().contains("uid/file/allow"), "{e}");
        fs::remove_file(r.join("uid/file")).unwrap();
        write(&r.join("uid/1/allow"), b"");
        fs::create_dir_all(r.join("uid/1/exec")).unwrap();
        check("exec a directory");
        fs::remove_dir(r.join("uid/1/exec")).unwrap();
        for i in 1..=3 {
            write(&r.join(format!("uid/1/env/V{i}")), &[b'x'; 2000]);
        }
        let e = check("env too big");
        assert_eq!(e.exit_code(), 100);
        // The limit: 4096 compiled bytes (the C readers' limit; the C
        // compiler takes up to 4100).
        let env = r.join("uid/1/env");
        fs::remove_dir_all(&env).unwrap();
        write(&env.join("ABC"), &[b'x'; 4091]);
        cdb_from_fs(&r, &out, 0o644).unwrap();
        write(&env.join("ABC"), &[b'x'; 4092]);
        fs::write(&out, b"old").unwrap();
        check("4097 bytes");
        fs::remove_dir_all(&env).unwrap();
        write(&env.join("V1"), &[b'x'; 2044]);
        write(&env.join("V2"), &[b'x'; 2045]);
        check("4097 bytes in two");
        write(&env.join("V2"), &[b'x'; 2044]);
        cdb_from_fs(&r, &out, 0o644).unwrap();
    }

    #[test]
    fn decompile_roundtrip() {
        let t = TempDir::new("fsfrom");
        let r = t.path().join("r");
        sample(&r);
        let c1 = t.path().join("1.cdb");
        cdb_from_fs(&r, &c1, 0o600).unwrap();
        let d = t.path().join("d");
        fs_from_cdb(&d, &c1).unwrap();
        assert_eq!(fs::read(d.join("uid/0/env/NUL")).unwrap(), b"a\0b\n");
        assert_eq!(fs::read(d.join("uid/0/env/B")).unwrap(), b"");
        assert_eq!(fs::read(d.join("uid/0/exec")).unwrap(), b"echo hi");
        assert!(d.join("uid/default/deny").exists());
        assert!(!d.join("uid/7/env").exists());
        let c2 = t.path().join("2.cdb");
        cdb_from_fs(&d, &c2, 0o600).unwrap();
        let (mut a, mut b) = (records(&c1), records(&c2));
        a.sort();
        b.sort();
        assert_eq!(a, b);
        // The target must not exist.
        let e = fs_from_cdb(&d, &c1).unwrap_err();
        assert!(e.to_string().starts_with("unable to mkdir"), "{e}");
    }

    fn cdb_of(t: &TempDir, recs: &[(&[u8], &[u8])]) -> PathBuf {
        let mut m = CdbMaker::new();
        for (k, v) in recs {
            m.add(k, v, Path::new("x")).unwrap();
        }
        let p = t.path().join("x.cdb");
        fs::write(&p, m.finish()).unwrap();
        p
    }

    #[test]
    fn decompile_refuses_bad_data_and_cleans_up() {
        let t = TempDir::new("fsbad");
        let d = t.path().join("d");
        for (k, v) in [
            (&b"../x/y"[..], &b"D"[..]),
            (b"", b"D"),
            (b"/abs", b"D"),
            (b"a//b", b"D"),
            (b"uid/.", b"D"),
            (b"uid/1", b"X"),
            (b"uid/1", b"Dxyz"),
            (b"uid/1", b"A\0\x05B/x=1\0\0\0"),
            (b"uid/1", b"A\0\x03..\0\0\0"),
            (b"uid/1", b"A\0\x08B=1\0C\0\0D\0\0\0"),
        ] {
            let c = cdb_of(&t, &[(b"uid/0", b"D"), (k, v)]);
            let e = fs_from_cdb(&d, &c).unwrap_err();
            assert!(e.is_bad_rules(), "{e}");
            assert!(!d.exists(), "{k:?} {v:?}");
            assert!(!t.path().join("x").exists());
        }
        let c = cdb_of(&t, &[(b"uid/0", b"D"), (b"uid/0", b"A\0\0\0\0")]);
        fs_from_cdb(&d, &c).unwrap();
        assert!(d.join("uid/0/allow").exists() && d.join("uid/0/deny").exists());
        assert_eq!(
            fs::metadata(&d).unwrap().permissions().mode() & 0o777,
            0o755
        );
    }

    /// Runs a C program, showing its stderr only if it fails (the compiler
    /// warns about the long exec on purpose).
    fn run(cmd: &mut Command) {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Our compiler against the C one on the same tree, when it is
    /// installed: the files must be identical (both write in readdir order).
    /// Then each decompiler reads the other's output.
    #[test]
    fn same_bytes_as_the_c_compiler() {
        let cbin = Path::new("/usr/bin/s6-accessrules-cdb-from-fs");
        let cdec = Path::new("/usr/bin/s6-accessrules-fs-from-cdb");
        if !cbin.exists() || !cdec.exists() {
            eprintln!("skipping: {} not installed", cbin.display());
            return;
        }
        let t = TempDir::new("vsc");
        let r = t.path().join("r");
        sample(&r);
        write(&r.join("uid/0/env/TWO"), b"line1 \t\r \nline2\n");
        write(&r.join("uid/0/env/NLONLY"), b"\n");
        write(&r.join("uid/8/allow"), b"");
        let mut long = vec![b'x'; 4092];
        long.push(b'\n');
        long.resize(5000, b'z');
        write(&r.join("uid/8/env/T"), &long);
        let ours = t.path().join("ours.cdb");
        let theirs = t.path().join("theirs.cdb");
        cdb_from_fs(&r, &ours, DEFAULT_CDB_MODE).unwrap();
        run(Command::new(cbin).arg(&theirs).arg(&r));
        assert_eq!(fs::read(&ours).unwrap(), fs::read(&theirs).unwrap());

        let dc = t.path().join("dc");
        run(Command::new(cdec).arg(&dc).arg(&ours));
        let dr = t.path().join("dr");
        fs_from_cdb(&dr, &theirs).unwrap();
        let (c1, c2) = (t.path().join("c1.cdb"), t.path().join("c2.cdb"));
        cdb_from_fs(&dc, &c1, 0o600).unwrap();
        cdb_from_fs(&dr, &c2, 0o600).unwrap();
        let (mut a, mut b, mut o) = (records(&c1), records(&c2), records(&ours));
        a.sort();
        b.sort();
        o.sort();
        // C writes the newline of NUL's value "a\nb" as is, so it reads back
        // as "a"; ours keeps it.
        assert_eq!(b, o);
        let nul = |recs: &[(Vec<u8>, Vec<u8>)]| {
            let (_, v) = recs.iter().find(|(k, _)| k == b"uid/0").unwrap();
            v.windows(8).any(|w| w == b"NUL=a\nb\0")
        };
        assert!(nul(&b) && !nul(&a));
        let strip = |recs: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<(Vec<u8>, Vec<u8>)> {
            recs.into_iter().filter(|(k, _)| k != b"uid/0").collect()
        };
        assert_eq!(strip(a), strip(o));
    }
}
