//! IPCREMOTEGIDLIST: the client's supplementary groups at `connect()`, as
//! the kernel recorded them, comma-separated; unset where the system does
//! not record all of them, with `-P`, and whatever the server inherited.
//! Clients with the groups each test sets run through `setpriv` (as root).
//! Every credentials backend runs this file (ci/test): Linux's gives every
//! list, FreeBSD's (`force-xucred`) those of at most 14 groups, illumos's
//! (`force-getpeerucred`) every list, the others none.

mod common;

use std::process::Command;

use common::Server;

/// The lists the tests give their clients: none, one, several, more than
/// a `struct xucred` holds (16), more than 64.
fn lists() -> Vec<Vec<u32>> {
    vec![
        vec![],
        vec![4242],
        vec![5, 7, 3000],
        (1000..1014).collect(), // 14: the most a full xucred array leaves room for
        (1000..1015).collect(), // 15: the array is full, maybe cut short
        (2000..2020).collect(),
        (3000..3100).collect(),
    ]
}

/// Connects as uid 65534 with supplementary `groups`, and returns the
/// environment the server's child printed (`env -0`).
fn env_seen_by_child(server: &Server, groups: &[u32]) -> Vec<(Vec<u8>, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(server.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    // s6-ipcclient: its child reads what the server's child wrote.
    cmd.args(["timeout", "10", "s6-ipcclient"])
        .arg(&server.path)
        .args(["sh", "-c", "cat <&6"]);
    let out = cmd.output().expect("run setpriv");
    assert!(out.status.success(), "client failed: {out:?}");
    common::parse_env0(&out.stdout)
}

fn skip(test: &str) -> bool {
    common::skip_unless_root(test)
        || common::skip_unless_tool(test, "setpriv")
        || common::skip_unless_tool(test, "s6-ipcclient")
}

#[test]
fn the_child_gets_the_clients_supplementary_groups_where_the_system_records_them_all() {
    let test = "the_child_gets_the_clients_supplementary_groups_where_the_system_records_them_all";
    if skip(test) {
        return;
    }
    if !platform::credentials::SUPPORTED {
        common::record_skip(test, "this build cannot look up credentials");
        return;
    }
    // A value inherited from the server's own environment never reaches a
    // child as the client's.
    let server = Server::start_with(&[], &["env", "-0"], |cmd| {
        cmd.env("IPCREMOTEGIDLIST", "0,1,2");
    });
    let limit = platform::credentials::MAX_KNOWN_GROUPS;
    for groups in lists() {
        let env = env_seen_by_child(&server, &groups);
        assert_eq!(common::env_get(&env, "IPCREMOTEEUID"), Some(&b"65534"[..]));
        let recorded = platform::credentials::GROUPS_MECHANISM.is_some();
        let want = (recorded && groups.len() <= limit).then(|| {
            let list: Vec<String> = groups.iter().map(u32::to_string).collect();
            list.join(",")
        });
        let got = common::env_get(&env, "IPCREMOTEGIDLIST")
            .map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(
            got,
            want,
            "{} groups, {} ({:?} gives at most {limit})",
            groups.len(),
            if want.is_some() {
                "passed on"
            } else {
                "unknown: unset"
            },
            platform::credentials::GROUPS_MECHANISM,
        );
    }
}

#[test]
fn minus_p_and_systems_without_a_record_leave_the_list_unset() {
    let test = "minus_p_and_systems_without_a_record_leave_the_list_unset";
    if skip(test) {
        return;
    }
    let server = Server::start_with(&["-P"], &["env", "-0"], |cmd| {
        cmd.env("IPCREMOTEGIDLIST", "0,1,2");
    });
    let env = env_seen_by_child(&server, &[5, 7]);
    assert_eq!(
        common::env_get(&env, "IPCREMOTEEUID"),
        None,
        "-P: no lookup"
    );
    assert_eq!(
        common::env_get(&env, "IPCREMOTEGIDLIST"),
        None,
        "-P: no list"
    );

    // The build's backend, whatever it is, answers as it says it does.
    if platform::credentials::SUPPORTED && platform::credentials::GROUPS_MECHANISM.is_none() {
        let server = Server::start_with(&[], &["env", "-0"], |cmd| {
            cmd.env("IPCREMOTEGIDLIST", "0,1,2");
        });
        let env = env_seen_by_child(&server, &[5, 7]);
        assert_eq!(common::env_get(&env, "IPCREMOTEGIDLIST"), None);
    }
}

/// Runs our s6-ipcserver-access with only `vars` in its environment (and
/// PATH), `-l x` so that stdin need not be a socket; returns its exit code,
/// what the program printed (`env -0`) and stderr.
fn access(args: &[&str], vars: &[(&str, &str)], rules: &std::path::Path) -> (i32, Vec<u8>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s6-ipcserver-access"))
        .current_dir(rules)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(vars.iter().copied())
        .args(["-v2", "-l", "x", "-i", "rules"])
        .args(args)
        .args(["env", "-0"])
        .output()
        .expect("run s6-ipcserver-access");
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A rules tree under `dir/rules`: each (key, file) becomes
/// `rules/KEY/FILE`, an empty file.
fn rules(dir: &common::TempDir, entries: &[(&str, &str)]) {
    for (key, file) in entries {
        let d = dir.join("rules").join(key);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), b"").unwrap();
    }
}

const CLIENT: [(&str, &str); 4] = [
    ("PROTO", "IPC"),
    ("IPCREMOTEEUID", "1000"),
    ("IPCREMOTEEGID", "100"),
    ("IPCREMOTEGIDLIST", "5,7"),
];

#[test]
fn access_minus_g_tries_each_supplementary_group_after_the_egid() {
    let dir = common::TempDir::new();
    rules(
        &dir,
        &[("gid/7", "allow"), ("gid/5", "deny"), ("gid/9", "allow")],
    );
    // Without -g: exactly the C lookup, which never reads the list.
    let (code, _, err) = access(&[], &CLIENT, dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("deny pid") && err.ends_with("uid 1000 gid 100: No such file or directory\n"),
        "{err}"
    );
    // With -g: gid/5 comes first in the list, and denies.
    let (code, _, err) = access(&["-g"], &CLIENT, dir.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.ends_with("uid 1000 gid 100: Permission denied\n"),
        "{err}"
    );
    // In list order: 7 first now, which allows.
    let mut client = CLIENT;
    client[3] = ("IPCREMOTEGIDLIST", "7,5");
    let (code, env, err) = access(&["-g"], &client, dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        common::env_get(&common::parse_env0(&env), "IPCREMOTEGIDLIST"),
        Some(&b"7,5"[..])
    );
    // -E removes it with the rest.
    let (code, env, err) = access(&["-g", "-E"], &client, dir.path());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        common::env_get(&common::parse_env0(&env), "IPCREMOTEGIDLIST"),
        None
    );
}

#[test]
fn access_minus_g_puts_the_egid_first_and_uid_default_last() {
    let dir = common::TempDir::new();
    rules(
        &dir,
        &[
            ("gid/100", "deny"),
            ("gid/7", "allow"),
            ("uid/default", "allow"),
        ],
    );
    let (code, _, err) = access(&["-g"], &CLIENT, dir.path());
    assert_eq!(
        (code, err.ends_with(": Permission denied\n")),
        (1, true),
        "gid/EGID first: {err}"
    );
    let dir = common::TempDir::new();
    rules(&dir, &[("gid/5", "deny"), ("uid/default", "allow")]);
    let (code, _, err) = access(&["-g"], &CLIENT, dir.path());
    assert_eq!(code, 1, "a group's rule before uid/default: {err}");
    let mut client = CLIENT;
    client[3] = ("IPCREMOTEGIDLIST", "");
    let (code, _, err) = access(&["-g"], &client, dir.path());
    assert_eq!(code, 0, "no groups: uid/default: {err}");
}

#[test]
fn access_minus_g_refuses_a_client_whose_groups_are_unknown() {
    let dir = common::TempDir::new();
    rules(&dir, &[("gid/100", "allow")]);
    let (code, out, err) = access(&["-g"], &CLIENT[..3], dir.path());
    assert_eq!(code, 100, "{err}");
    assert!(out.is_empty(), "prog never runs");
    assert!(err.contains("IPCREMOTEGIDLIST is not set"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // PROTO names the variable.
    let unix = [
        ("PROTO", "UNIX"),
        ("UNIXREMOTEEUID", "1"),
        ("UNIXREMOTEEGID", "100"),
        ("UNIXREMOTEGIDLIST", "x"),
    ];
    let (code, _, err) = access(&["-g"], &unix, dir.path());
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("UNIXREMOTEGIDLIST is not a comma-separated list"),
        "{err}"
    );
    // Without -g, the same client is served by gid/100 as in C.
    let (code, _, err) = access(&[], &CLIENT[..3], dir.path());
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_rule_set_admits_the_members_of_a_group() {
    let test = "a_rule_set_admits_the_members_of_a_group";
    if skip(test) {
        return;
    }
    if platform::credentials::GROUPS_MECHANISM.is_none() {
        common::record_skip(test, "this build does not read the client's groups");
        return;
    }
    // The children run in the server's directory, where the rules are.
    let dir = common::TempDir::new();
    rules(&dir, &[("gid/4242", "allow")]);
    let mut cmd = common::command();
    cmd.current_dir(dir.path());
    let path = dir.join("sock");
    cmd.arg("-1").arg(&path).args([
        env!("CARGO_BIN_EXE_s6-ipcserver-access"),
        "-g",
        "-i",
        "rules",
        "env",
        "-0",
    ]);
    let server = Server::spawn_ready(cmd, path, dir);
    let member = env_seen_by_child(&server, &[10, 4242]);
    assert_eq!(
        common::env_get(&member, "IPCREMOTEGIDLIST"),
        Some(&b"10,4242"[..])
    );
    let outsider = env_seen_by_child(&server, &[10, 4243]);
    assert!(outsider.is_empty(), "refused: {outsider:?}");
}
