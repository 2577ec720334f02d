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
