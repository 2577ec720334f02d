//! s6-ipcserver-access and the two rules compilers, side by side with the
//! C ones of Debian's s6 (2.11.3.2): the same rules, as a directory and as
//! a cdb file compiled by either compiler, give the same decision, the
//! same environment, the same log lines (pids aside) and the same exit
//! code. Each case also checks our result on its own, so that a missing C
//! program (the comparison is then skipped, and the skip recorded) still
//! leaves a test that can fail.

mod common;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{output_within, TempDir};

const ACCESS: &str = env!("CARGO_BIN_EXE_s6-ipcserver-access");
const CDB_FROM_FS: &str = env!("CARGO_BIN_EXE_s6-accessrules-cdb-from-fs");
const FS_FROM_CDB: &str = env!("CARGO_BIN_EXE_s6-accessrules-fs-from-cdb");

/// The C program `name`, or `None` (the skip recorded for `test`).
fn c_tool(test: &str, name: &str) -> Option<PathBuf> {
    if common::skip_unless_tool(test, name) {
        return None;
    }
    Some(common::executable(name))
}

// SAFETY (both): geteuid and getegid cannot fail and touch no memory.
fn euid() -> u32 {
    unsafe { libc::geteuid() }
}
fn egid() -> u32 {
    unsafe { libc::getegid() }
}

/// Client uids the rules name; none is ours (the test would then hit
/// uid/self first).
const U_ALLOW: u32 = 40001;
const U_DENY: u32 = 40002;
const U_BYGID: u32 = 40003;
const U_NONE: u32 = 40004;

fn write(path: &Path, contents: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// The main rules tree: uid/self, an allowing uid with env files of every
/// kind (trailing blanks, two lines, empty: unset, a lone newline: the
/// empty value), a denying uid, gid/<our egid>; no uid/default.
fn main_rules(root: &Path) {
    assert!(![U_ALLOW, U_DENY, U_BYGID, U_NONE].contains(&euid()));
    write(&root.join("uid/self/allow"), b"");
    write(&root.join("uid/self/env/WHO"), b"self\n");
    let a = root.join(format!("uid/{U_ALLOW}"));
    write(&a.join("allow"), b"");
    write(&a.join("env/BLANKS"), b"hello \t \r\n");
    write(&a.join("env/TWO"), b"first line  \nsecond line\n");
    write(&a.join("env/HOME"), b"");
    write(&a.join("env/EMPTYLINE"), b"\n");
    write(&a.join("env/WHO"), b"uid");
    write(&root.join(format!("uid/{U_DENY}/deny")), b"");
    write(&root.join(format!("gid/{}/allow", egid())), b"");
    write(&root.join(format!("gid/{}/env/WHO", egid())), b"gid\n");
}

/// A tree whose only allowing rule is uid/default.
fn default_rules(root: &Path) {
    write(&root.join("uid/default/allow"), b"");
    write(&root.join("uid/default/env/WHO"), b"default\n");
    write(&root.join(format!("uid/{U_DENY}/deny")), b"");
}

/// What one run of an access program came to.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    /// The environment the program saw, sorted; empty if it did not run.
    env: BTreeMap<String, String>,
    /// stderr, each `pid N` made `pid P`.
    log: Vec<String>,
}

impl Outcome {
    fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }
}

fn strip_pids(stderr: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "a panic: {text}");
    text.lines()
        .map(|l| {
            let mut words: Vec<&str> = l.split(' ').collect();
            if let Some(i) = words.iter().position(|w| *w == "pid") {
                if i + 1 < words.len() {
                    words[i + 1] = "P";
                }
            }
            words.join(" ")
        })
        .collect()
}

/// Runs `bin ARGS env -0` with only `vars` and PATH (and HOME=/h, KEEP=1:
/// what a rule may unset, and what nobody touches) in its environment and
/// `stdin` on fd 0 (/dev/null if none).
fn run(bin: &Path, args: &[&str], vars: &[(&str, &str)], stdin: Option<OwnedFd>) -> Outcome {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", "/h")
        .env("KEEP", "1")
        .envs(vars.iter().copied())
        .args(args)
        .args(["env", "-0"])
        .stdin(stdin.map_or(Stdio::null(), Stdio::from));
    let out = output_within(&mut cmd);
    let env = common::parse_env0(&out.stdout)
        .into_iter()
        .map(|(k, v)| (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()))
        .filter(|(k, _)| k != "_")
        .collect();
    Outcome {
        code: out.status.code(),
        env,
        log: strip_pids(&out.stderr),
    }
}

fn ours(args: &[&str], vars: &[(&str, &str)]) -> Outcome {
    run(Path::new(ACCESS), args, vars, None)
}

/// Ours, and the C program's if there is one, which must agree.
fn both(c: Option<&Path>, args: &[&str], vars: &[(&str, &str)]) -> Outcome {
    let o = ours(args, vars);
    if let Some(c) = c {
        assert_eq!(run(c, args, vars, None), o, "C vs ours: {args:?} {vars:?}");
    }
    o
}

fn client(uid: u32, gid: u32) -> Vec<(&'static str, String)> {
    vec![
        ("PROTO", "IPC".into()),
        ("IPCREMOTEEUID", uid.to_string()),
        ("IPCREMOTEEGID", gid.to_string()),
        ("IPCREMOTEPID", "4242".into()),
        ("IPCREMOTEPATH", "".into()),
        ("IPCCONNNUM", "1".into()),
    ]
}

/// `vars` without IPCREMOTEPID, which ours unsets with -E and the C
/// program does not (see minus_capital_e_...).
fn without_pid(vars: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    vars.into_iter()
        .filter(|(k, _)| *k != "IPCREMOTEPID")
        .collect()
}

fn refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn allow_line(uid: u32, gid: u32) -> String {
    format!("s6-ipcserver-access: info: allow pid P uid {uid} gid {gid}")
}

fn deny_line(uid: u32, gid: u32, why: &str) -> String {
    format!("s6-ipcserver-access: info: deny pid P uid {uid} gid {gid}: {why}")
}

/// Every decision of the main and default trees through `-i` (or `-x`
/// with `file`), ours against C.
fn check_decisions(c: Option<&Path>, main: [&str; 2], default: [&str; 2]) {
    let go = |rules: [&str; 2], uid: u32, gid: u32| {
        let vars = client(uid, gid);
        both(c, &["-v2", "-l", "LOCAL", rules[0], rules[1]], &refs(&vars))
    };
    // uid/self: the client's euid is ours.
    let o = go(main, euid(), U_NONE);
    assert_eq!((o.code, o.var("WHO")), (Some(0), Some("self")), "{o:?}");
    assert_eq!(o.log, [allow_line(euid(), U_NONE)]);
    // uid/N with env files.
    let o = go(main, U_ALLOW, U_NONE);
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.var("BLANKS"), Some("hello"), "trailing blanks cut");
    assert_eq!(o.var("TWO"), Some("first line"), "the first line only");
    assert_eq!(o.var("HOME"), None, "an empty file unsets");
    assert_eq!(o.var("EMPTYLINE"), Some(""), "a newline sets empty");
    assert_eq!(o.var("WHO"), Some("uid"));
    assert_eq!(o.var("KEEP"), Some("1"));
    assert_eq!(o.var("IPCLOCALPATH"), Some("LOCAL"));
    assert_eq!(o.var("IPCREMOTEPID"), Some("4242"));
    assert_eq!(o.log, [allow_line(U_ALLOW, U_NONE)]);
    // deny.
    let o = go(main, U_DENY, U_NONE);
    assert_eq!(o.code, Some(1));
    assert!(o.env.is_empty(), "the program must not run: {o:?}");
    assert_eq!(o.log, [deny_line(U_DENY, U_NONE, "Permission denied")]);
    // gid/<our egid>.
    let o = go(main, U_BYGID, egid());
    assert_eq!((o.code, o.var("WHO")), (Some(0), Some("gid")), "{o:?}");
    // No rule for this client: denied, for another reason.
    let o = go(main, U_NONE, U_NONE);
    assert_eq!(o.code, Some(1));
    assert!(o.env.is_empty());
    assert_eq!(
        o.log,
        [deny_line(U_NONE, U_NONE, "No such file or directory")]
    );
    // uid/default, after a uid rule that denies.
    let o = go(default, U_NONE, U_NONE);
    assert_eq!((o.code, o.var("WHO")), (Some(0), Some("default")), "{o:?}");
    let o = go(default, U_DENY, U_NONE);
    assert_eq!(o.code, Some(1));
}

struct Trees {
    dir: TempDir,
}

impl Trees {
    fn new() -> Trees {
        let dir = TempDir::new();
        main_rules(&dir.join("main"));
        default_rules(&dir.join("default"));
        Trees { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_string()
    }

    /// Compiles both trees with `compiler` into `main.TAG.cdb` and
    /// `default.TAG.cdb`.
    fn compile(&self, compiler: &Path, tag: &str) {
        for tree in ["main", "default"] {
            let out = output_within(
                Command::new(compiler)
                    .arg(self.dir.join(format!("{tree}.{tag}.cdb")))
                    .arg(self.dir.join(tree))
                    .stdin(Stdio::null()),
            );
            assert!(out.status.success(), "{compiler:?}: {out:?}");
        }
    }
}

#[test]
fn a_rules_directory_decides_as_the_c_program() {
    let c = c_tool(
        "a_rules_directory_decides_as_the_c_program",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    check_decisions(
        c.as_deref(),
        ["-i", &t.path("main")],
        ["-i", &t.path("default")],
    );
}

#[test]
fn a_cdb_from_our_compiler_decides_as_the_directory() {
    let c = c_tool(
        "a_cdb_from_our_compiler_decides_as_the_directory (C access on our cdb)",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    t.compile(Path::new(CDB_FROM_FS), "ours");
    check_decisions(
        c.as_deref(),
        ["-x", &t.path("main.ours.cdb")],
        ["-x", &t.path("default.ours.cdb")],
    );
}

#[test]
fn a_cdb_from_the_c_compiler_decides_as_the_directory() {
    let test = "a_cdb_from_the_c_compiler_decides_as_the_directory";
    let Some(compiler) = c_tool(test, "s6-accessrules-cdb-from-fs") else {
        return;
    };
    let c = c_tool(test, "s6-ipcserver-access");
    let t = Trees::new();
    t.compile(&compiler, "c");
    check_decisions(
        c.as_deref(),
        ["-x", &t.path("main.c.cdb")],
        ["-x", &t.path("default.c.cdb")],
    );
}

#[test]
fn our_compiler_writes_the_c_compilers_bytes() {
    let test = "our_compiler_writes_the_c_compilers_bytes";
    let Some(compiler) = c_tool(test, "s6-accessrules-cdb-from-fs") else {
        return;
    };
    let t = Trees::new();
    t.compile(&compiler, "c");
    t.compile(Path::new(CDB_FROM_FS), "ours");
    for tree in ["main", "default"] {
        let c = std::fs::read(t.dir.join(format!("{tree}.c.cdb"))).unwrap();
        let o = std::fs::read(t.dir.join(format!("{tree}.ours.cdb"))).unwrap();
        assert!(c.len() > 2048, "{tree}: a cdb has a 2048-byte header");
        assert!(c == o, "{tree}: our cdb differs from the C compiler's");
        let mode = |tag: &str| {
            let p = t.dir.join(format!("{tree}.{tag}.cdb"));
            std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
        };
        assert_eq!(mode("ours"), mode("c"), "{tree}: file mode");
    }
}

/// A tree decompiled from a cdb, as a map from relative path to contents
/// (directories as `None`).
fn tree_of(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Option<Vec<u8>>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_str().unwrap().to_string();
            if p.is_dir() {
                out.insert(rel, None);
                walk(root, &p, out);
            } else {
                out.insert(rel, Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn decompiling_gives_the_c_decompilers_tree() {
    let test = "decompiling_gives_the_c_decompilers_tree";
    let t = Trees::new();
    t.compile(Path::new(CDB_FROM_FS), "ours");
    let cdb = t.dir.join("main.ours.cdb");
    let out = output_within(
        Command::new(FS_FROM_CDB)
            .arg(t.dir.join("back.ours"))
            .arg(&cdb)
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "{out:?}");
    let ours = tree_of(&t.dir.join("back.ours"));
    let key = format!("uid/{U_ALLOW}/env/BLANKS");
    assert!(ours.contains_key(&format!("uid/{U_DENY}/deny")), "{ours:?}");
    assert!(ours.contains_key(&key), "{ours:?}");
    // And the decompiled tree decides as the original one.
    let vars = client(U_ALLOW, U_NONE);
    let o = ours_in(&t.path("back.ours"), &refs(&vars));
    assert_eq!((o.code, o.var("BLANKS")), (Some(0), Some("hello")), "{o:?}");
    assert_eq!(o.var("HOME"), None);
    let Some(c) = c_tool(test, "s6-accessrules-fs-from-cdb") else {
        return;
    };
    let out = output_within(
        Command::new(c)
            .arg(t.dir.join("back.c"))
            .arg(&cdb)
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(ours, tree_of(&t.dir.join("back.c")));
}

fn ours_in(rules: &str, vars: &[(&str, &str)]) -> Outcome {
    ours(&["-l", "x", "-i", rules], vars)
}

#[test]
fn each_verbosity_logs_what_the_c_program_logs() {
    let c = c_tool(
        "each_verbosity_logs_what_the_c_program_logs",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    let main = t.path("main");
    for (v, allow, deny, none) in [("-v0", 0, 0, 0), ("-v1", 1, 0, 1), ("-v2", 1, 1, 2)] {
        let run = |uid, rules: Option<&str>| {
            let vars = client(uid, U_NONE);
            let mut args = vec![v, "-l", "x"];
            if let Some(r) = rules {
                args.extend(["-i", r]);
            }
            both(c.as_deref(), &args, &refs(&vars))
        };
        let o = run(U_ALLOW, Some(&main));
        assert_eq!(o.log.len(), allow, "{v} allow: {:?}", o.log);
        let o = run(U_DENY, Some(&main));
        assert_eq!((o.code, o.log.len()), (Some(1), deny), "{v} deny: {o:?}");
        // No ruleset: allowed, with a warning at -v2, the line at -v1.
        let o = run(U_NONE, None);
        assert_eq!(o.code, Some(0));
        assert_eq!(o.log.len(), none, "{v} no ruleset: {:?}", o.log);
        if v == "-v2" {
            assert_eq!(
                o.log,
                [
                    "s6-ipcserver-access: warning: invoked without a ruleset!".to_string(),
                    allow_line(U_NONE, U_NONE)
                ]
            );
        }
    }
}

#[test]
fn minus_capital_e_removes_the_server_variables_not_the_rules() {
    let c = c_tool(
        "minus_capital_e_removes_the_server_variables_not_the_rules",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    // IPCREMOTEPID aside: the C s6-ipcserverd never sets it, and the C
    // s6-ipcserver-access -E leaves it; ours sets it and -E removes it
    // (below), as the C doc says -E does for every server variable.
    let mut vars = without_pid(client(U_ALLOW, U_NONE));
    vars.push(("IPCLOCALPATH", "stale".into()));
    vars.push(("TCPREMOTEIP", "1.2.3.4".into()));
    let o = both(c.as_deref(), &["-E", "-i", &t.path("main")], &refs(&vars));
    assert_eq!(o.code, Some(0), "{o:?}");
    for gone in [
        "PROTO",
        "IPCREMOTEEUID",
        "IPCREMOTEEGID",
        "IPCREMOTEPATH",
        "IPCLOCALPATH",
        "IPCCONNNUM",
    ] {
        assert_eq!(o.var(gone), None, "{gone} with -E: {o:?}");
    }
    assert_eq!(o.var("TCPREMOTEIP"), Some("1.2.3.4"), "another PROTO's");
    assert_eq!(o.var("WHO"), Some("uid"), "the rule's env still applies");
    vars.push(("IPCREMOTEPID", "4242".into()));
    let o = ours(&["-E", "-i", &t.path("main")], &refs(&vars));
    assert_eq!(o.var("IPCREMOTEPID"), None, "ours removes it: {o:?}");
    // -E then -e: the last one counts (needs -l here: stdin is no socket).
    let o = both(
        c.as_deref(),
        &["-E", "-e", "-l", "L", "-i", &t.path("main")],
        &refs(&vars),
    );
    assert_eq!(
        (o.var("PROTO"), o.var("IPCLOCALPATH")),
        (Some("IPC"), Some("L"))
    );
}

#[test]
fn the_servers_variables_win_over_the_rules() {
    let c = c_tool(
        "the_servers_variables_win_over_the_rules",
        "s6-ipcserver-access",
    );
    let t = TempDir::new();
    let rule = t.join(format!("uid/{U_ALLOW}"));
    write(&rule.join("allow"), b"");
    for name in ["PROTO", "IPCLOCALPATH", "IPCCONNNUM", "OTHER"] {
        write(&rule.join("env").join(name), b"fromrule\n");
    }
    let rules = t.path().to_str().unwrap();
    let vars = without_pid(client(U_ALLOW, U_NONE));
    // -e: the rule's IPCLOCALPATH gives way to -l's value.
    let o = both(c.as_deref(), &["-l", "L", "-i", rules], &refs(&vars));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.var("IPCLOCALPATH"), Some("L"));
    assert_eq!(o.var("PROTO"), Some("fromrule"));
    assert_eq!(o.var("IPCCONNNUM"), Some("fromrule"));
    // -E: what the rule sets is unset all the same.
    let o = both(c.as_deref(), &["-E", "-i", rules], &refs(&vars));
    assert_eq!(o.code, Some(0), "{o:?}");
    for gone in ["PROTO", "IPCLOCALPATH", "IPCCONNNUM"] {
        assert_eq!(o.var(gone), None, "{gone}: {o:?}");
    }
    assert_eq!(o.var("OTHER"), Some("fromrule"));
}

#[test]
fn proto_unix_reads_and_sets_the_unix_variables() {
    let c = c_tool(
        "proto_unix_reads_and_sets_the_unix_variables",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    let vars = [
        ("PROTO", "UNIX".to_string()),
        ("UNIXREMOTEEUID", U_ALLOW.to_string()),
        ("UNIXREMOTEEGID", U_NONE.to_string()),
        // The IPC ones are some other server's: ignored.
        ("IPCREMOTEEUID", U_DENY.to_string()),
        ("IPCREMOTEEGID", U_NONE.to_string()),
        ("UNIXLOCALPATH", "stale".into()),
        ("UNIXREMOTEPID", "7".into()),
    ];
    let o = both(
        c.as_deref(),
        &["-v2", "-l", "U", "-i", &t.path("main")],
        &refs(&vars),
    );
    assert_eq!((o.code, o.var("WHO")), (Some(0), Some("uid")), "{o:?}");
    assert_eq!(o.var("UNIXLOCALPATH"), Some("U"));
    assert_eq!(o.var("IPCLOCALPATH"), None);
    assert_eq!(o.log, [allow_line(U_ALLOW, U_NONE)]);
    // UNIXREMOTEPID aside (see minus_capital_e_...).
    let o = both(
        c.as_deref(),
        &["-E", "-i", &t.path("main")],
        &refs(&vars[..6]),
    );
    assert_eq!(o.var("UNIXREMOTEEUID"), None, "{o:?}");
    assert_eq!(o.var("PROTO"), None);
    assert_eq!(o.var("IPCREMOTEEUID"), Some(&*U_DENY.to_string()));
    let o = ours(&["-E", "-i", &t.path("main")], &refs(&vars));
    assert_eq!(o.var("UNIXREMOTEPID"), None, "{o:?}");
}

/// A connection to a socket bound at `path`: the server's end, as
/// s6-ipcserver gives it to its child on stdin.
fn accepted(path: &Path) -> (UnixListener, UnixStream, OwnedFd) {
    let l = UnixListener::bind(path).unwrap();
    let client = UnixStream::connect(path).unwrap();
    let (server, _) = l.accept().unwrap();
    (l, client, OwnedFd::from(server))
}

#[test]
fn without_minus_l_the_local_path_is_the_sockets_own() {
    let c = c_tool(
        "without_minus_l_the_local_path_is_the_sockets_own",
        "s6-ipcserver-access",
    );
    let t = Trees::new();
    let sock = t.dir.join("sock");
    let vars = client(U_ALLOW, U_NONE);
    let args = ["-v2", "-i", &t.path("main")];
    let (_l, _client, fd) = accepted(&sock);
    let o = run(Path::new(ACCESS), &args, &refs(&vars), Some(fd));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.var("IPCLOCALPATH"), sock.to_str());
    // A socket with no address: the empty string.
    let (a, _b) = UnixStream::pair().unwrap();
    let unnamed = run(Path::new(ACCESS), &args, &refs(&vars), Some(a.into()));
    assert_eq!(unnamed.var("IPCLOCALPATH"), Some(""), "{unnamed:?}");
    // Not a socket: an error, 111.
    let none = ours(&args, &refs(&vars));
    assert_eq!(none.code, Some(111), "{none:?}");
    assert!(
        none.log
            .iter()
            .any(|l| l.ends_with(&format!(": {}", common::strerror(libc::ENOTSOCK)))),
        "{none:?}"
    );
    let Some(c) = c else { return };
    std::fs::remove_file(&sock).unwrap();
    let (_l, _client, fd) = accepted(&sock);
    assert_eq!(run(&c, &args, &refs(&vars), Some(fd)), o);
    let (a, _b) = UnixStream::pair().unwrap();
    assert_eq!(run(&c, &args, &refs(&vars), Some(a.into())), unnamed);
    assert_eq!(run(&c, &args, &refs(&vars), None).code, none.code);
}

// Bad input: an error message naming what is wrong, the C exit code,
// never a panic (`run` fails on "panicked" in stderr).

#[test]
fn a_broken_environment_exits_100_naming_the_variable() {
    let c = c_tool(
        "a_broken_environment_exits_100_naming_the_variable",
        "s6-ipcserver-access",
    );
    let cases: [(&[(&str, &str)], &str); 7] = [
        (&[], "PROTO"),
        (&[("PROTO", "IPC"), ("IPCREMOTEEGID", "1")], "IPCREMOTEEUID"),
        (&[("PROTO", "IPC"), ("IPCREMOTEEUID", "1")], "IPCREMOTEEGID"),
        (
            &[
                ("PROTO", "IPC"),
                ("IPCREMOTEEUID", "x1"),
                ("IPCREMOTEEGID", "1"),
            ],
            "IPCREMOTEEUID",
        ),
        (
            &[
                ("PROTO", "IPC"),
                ("IPCREMOTEEUID", ""),
                ("IPCREMOTEEGID", "1"),
            ],
            "IPCREMOTEEUID",
        ),
        (
            &[
                ("PROTO", "IPC"),
                ("IPCREMOTEEUID", "1"),
                ("IPCREMOTEEGID", "-1"),
            ],
            "IPCREMOTEEGID",
        ),
        (
            &[
                ("PROTO", "UNIX"),
                ("UNIXREMOTEEUID", "99999999999"),
                ("UNIXREMOTEEGID", "1"),
            ],
            "UNIXREMOTEEUID",
        ),
    ];
    for (vars, name) in cases {
        let o = ours(&["-l", "x"], vars);
        assert_eq!(o.code, Some(100), "{vars:?}: {o:?}");
        assert!(o.env.is_empty());
        assert_eq!(o.log.len(), 1, "{:?}", o.log);
        assert!(o.log[0].contains(name), "{name} not named: {:?}", o.log);
        if let Some(c) = &c {
            // The C wording differs ("PROTO not set", "invalid
            // $IPCREMOTEEUID"); the code does not.
            assert_eq!(run(c, &["-l", "x"], vars, None).code, o.code, "{vars:?}");
        }
    }
}

#[test]
fn a_rule_that_is_a_file_is_a_system_error_naming_it() {
    let c = c_tool(
        "a_rule_that_is_a_file_is_a_system_error_naming_it",
        "s6-ipcserver-access",
    );
    let t = TempDir::new();
    write(&t.join(format!("uid/{U_ALLOW}")), b"not a directory\n");
    let rules = t.path().to_str().unwrap();
    let vars = client(U_ALLOW, U_NONE);
    let o = ours(&["-l", "x", "-i", rules], &refs(&vars));
    assert_eq!(o.code, Some(111), "{o:?}");
    assert!(o.env.is_empty());
    let msg = &o.log[0];
    assert!(msg.contains(&format!("uid/{U_ALLOW}")), "{msg}");
    assert!(
        msg.contains("Not a directory") && !msg.contains("os error"),
        "{msg}"
    );
    if let Some(c) = c {
        // C says "unable to check fs ruleset in RULES: Not a directory".
        let co = run(&c, &["-l", "x", "-i", rules], &refs(&vars), None);
        assert_eq!(co.code, o.code, "{co:?}");
    }
    // The rules directory itself a file: the same.
    let file = t.join(format!("uid/{U_ALLOW}"));
    let o = ours(&["-l", "x", "-i", file.to_str().unwrap()], &refs(&vars));
    assert_eq!(o.code, Some(111), "{o:?}");
    // A missing directory has no rules: denied, as in C.
    let missing = t.join("none");
    let o = ours(
        &["-v2", "-l", "x", "-i", missing.to_str().unwrap()],
        &refs(&vars),
    );
    assert_eq!(o.code, Some(1), "{o:?}");
}

#[test]
fn a_missing_rules_file_is_a_system_error_naming_it() {
    let c = c_tool(
        "a_missing_rules_file_is_a_system_error_naming_it",
        "s6-ipcserver-access",
    );
    let t = TempDir::new();
    let file = t.join("rules.cdb");
    let vars = client(U_ALLOW, U_NONE);
    let args = ["-l", "x", "-x", file.to_str().unwrap()];
    let o = ours(&args, &refs(&vars));
    assert_eq!(o.code, Some(111), "{o:?}");
    assert!(o.log[0].contains(file.to_str().unwrap()), "{:?}", o.log);
    assert!(
        o.log[0].ends_with(": No such file or directory"),
        "{:?}",
        o.log
    );
    if let Some(c) = c {
        assert_eq!(run(&c, &args, &refs(&vars), None).code, o.code);
    }
}

#[test]
fn an_env_file_over_4096_bytes_is_cut_and_too_big_to_compile() {
    let test = "an_env_file_over_4096_bytes_is_cut_and_too_big_to_compile";
    let c = c_tool(test, "s6-ipcserver-access");
    let t = TempDir::new();
    let rules = t.join("rules");
    write(&rules.join(format!("uid/{U_ALLOW}/allow")), b"");
    write(&rules.join(format!("uid/{U_ALLOW}/env/BIG")), &[b'x'; 5000]);
    let vars = client(U_ALLOW, U_NONE);
    let args = ["-l", "x", "-i", rules.to_str().unwrap()];
    // From the directory, both read the first 4095 bytes.
    let o = both(c.as_deref(), &args, &refs(&vars));
    assert_eq!(o.code, Some(0), "{o:?}");
    assert_eq!(o.var("BIG").map(str::len), Some(4095));
    // Compiled, `BIG=` + 4095 bytes + NUL is 4100 bytes: over the 4096 the
    // readers accept. Ours refuses to write it (exit 100, as the C
    // compiler does for a bigger env); the C compiler writes it (it lets
    // up to 4100 bytes through), and then neither access program can read
    // it: a difference on purpose, so that what compiles can be read.
    let cdb = t.join("rules.cdb");
    let out = output_within(
        Command::new(CDB_FROM_FS)
            .arg(&cdb)
            .arg(&rules)
            .stdin(Stdio::null()),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{err}");
    assert!(err.contains("env too big"), "{err}");
    assert!(!err.contains("panicked"));
    assert!(!cdb.exists(), "nothing written");
    let Some(compiler) = c_tool(test, "s6-accessrules-cdb-from-fs") else {
        return;
    };
    let out = output_within(
        Command::new(compiler)
            .arg(&cdb)
            .arg(&rules)
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "the C compiler: {out:?}");
    let args = ["-l", "x", "-x", cdb.to_str().unwrap()];
    let o = ours(&args, &refs(&vars));
    assert_eq!(o.code, Some(111), "{o:?}");
    if let Some(c) = &c {
        // C: "unable to check cdb ruleset in FILE: Invalid argument".
        assert_eq!(run(c, &args, &refs(&vars), None).code, o.code);
    }
    assert!(
        o.log.iter().any(|l| l.contains(&format!("uid/{U_ALLOW}"))),
        "{o:?}"
    );
}

/// Compiles a one-rule tree (uid U_ALLOW, env X=1) with our compiler and
/// returns the cdb's bytes and where the rule's value `A\0\x04X=1\0\0\0`
/// starts.
fn one_rule_cdb(t: &TempDir) -> (Vec<u8>, usize) {
    let rules = t.join("rules");
    write(&rules.join(format!("uid/{U_ALLOW}/allow")), b"");
    write(&rules.join(format!("uid/{U_ALLOW}/env/X")), b"1\n");
    let cdb = t.join("good.cdb");
    let out = output_within(
        Command::new(CDB_FROM_FS)
            .arg(&cdb)
            .arg(&rules)
            .stdin(Stdio::null()),
    );
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&cdb).unwrap();
    let value = b"A\0\x04X=1\0\0\0";
    let at = bytes
        .windows(value.len())
        .position(|w| w == value)
        .expect("the rule's value in the cdb");
    (bytes, at)
}

#[test]
fn a_cdb_rule_with_a_bad_length_is_an_error_naming_it() {
    let c = c_tool(
        "a_cdb_rule_with_a_bad_length_is_an_error_naming_it",
        "s6-ipcserver-access",
    );
    let t = TempDir::new();
    let (good, at) = one_rule_cdb(&t);
    let vars = client(U_ALLOW, U_NONE);
    let file = t.join("bad.cdb");
    let args = ["-l", "x", "-x", file.to_str().unwrap()];
    // The unpatched file allows, with X=1: the patch is what breaks it.
    std::fs::write(&file, &good).unwrap();
    let o = both(c.as_deref(), &args, &refs(&vars));
    assert_eq!((o.code, o.var("X")), (Some(0), Some("1")), "{o:?}");
    // env length past the value; exec length past the value; env length
    // short, leaving bytes after the exec.
    for (offset, byte) in [(2, 0x09), (8, 0x01), (2, 0x03)] {
        let mut bad = good.clone();
        bad[at + offset] = byte;
        std::fs::write(&file, &bad).unwrap();
        let o = ours(&args, &refs(&vars));
        assert_eq!(o.code, Some(111), "patch {offset}={byte}: {o:?}");
        assert!(o.env.is_empty());
        let msg = o.log.join("\n");
        assert!(
            msg.contains(&format!("uid/{U_ALLOW}")) && msg.contains(file.to_str().unwrap()),
            "the message names the key and the file: {msg}"
        );
        if let Some(c) = &c {
            let co = run(c, &args, &refs(&vars), None);
            assert_eq!(co.code, o.code, "C, patch {offset}={byte}: {co:?}");
        }
    }
    // A truncated cdb (its header cut): an error too, not a panic.
    std::fs::write(&file, &good[..1000]).unwrap();
    let o = ours(&args, &refs(&vars));
    assert_eq!(o.code, Some(111), "{o:?}");
    if let Some(c) = &c {
        assert_eq!(run(c, &args, &refs(&vars), None).code, o.code);
    }
}

#[test]
fn exec_failures_exit_127_and_126() {
    let c = c_tool("exec_failures_exit_127_and_126", "s6-ipcserver-access");
    let t = TempDir::new();
    let plain = t.join("plain");
    write(&plain, b"#!/bin/sh\n");
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    let vars = client(U_ALLOW, U_NONE);
    for (prog, code) in [
        (t.join("missing").to_str().unwrap().to_string(), 127),
        (plain.to_str().unwrap().to_string(), 126),
    ] {
        let mut results = Vec::new();
        for bin in std::iter::once(PathBuf::from(ACCESS)).chain(c.clone()) {
            let out = output_within(
                Command::new(&bin)
                    .env_clear()
                    .envs(refs(&vars))
                    .args(["-v0", "-l", "x", &prog])
                    .stdin(Stdio::null()),
            );
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!err.contains("panicked"), "{err}");
            results.push(out.status.code());
            if bin == Path::new(ACCESS) {
                assert!(err.contains(&prog), "names the program: {err}");
            }
        }
        assert!(
            results.iter().all(|r| *r == Some(code)),
            "{prog}: {results:?}"
        );
    }
}
