//! The drop of privileges (README, Reference), checked from the outside: for each combination of -u, -g, -G
//! and -U, the real, effective and saved ids and the supplementary groups
//! of the child (read by the child itself from /proc/self/status) and of the
//! server are exactly what was asked. The server starts as root with
//! supplementary groups of its own, so that a group of root's that survived
//! a drop would show.
//! Every test reads /proc and skips, saying so, on systems without it.

mod common;

use std::os::unix::process::CommandExt;

use common::Server;

/// The groups root has when it starts the server.
const ROOT_GROUPS: [libc::gid_t; 3] = [0, 10, 20];

#[derive(Debug, PartialEq, Eq)]
struct Ids {
    /// Real, effective, saved.
    uid: [u32; 3],
    gid: [u32; 3],
    /// Sorted.
    groups: Vec<u32>,
}

fn parse_status(status: &str) -> Ids {
    let field = |name: &str| -> Vec<u32> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {status}"));
        line[name.len()..]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let (uid, gid) = (field("Uid:"), field("Gid:"));
    let mut groups = field("Groups:");
    groups.sort();
    Ids {
        uid: [uid[0], uid[1], uid[2]],
        gid: [gid[0], gid[1], gid[2]],
        groups,
    }
}

fn ids(uid: u32, gid: u32, groups: &[u32]) -> Ids {
    let mut groups = groups.to_vec();
    groups.sort();
    Ids {
        uid: [uid; 3],
        gid: [gid; 3],
        groups,
    }
}

/// Starts the server as root with [`ROOT_GROUPS`], `options` and `env`;
/// checks the child's ids, then the server's.
fn check(options: &[&str], env: &[(&str, &str)], want: Ids) {
    // Nothing here depends on the client's identity: a build that cannot
    // look it up runs with -P.
    let mut options = options.to_vec();
    if cfg!(feature = "force-unsupported-credentials") {
        options.insert(0, "-P");
    }
    let server = Server::start_with(&options, &["cat", "/proc/self/status"], |cmd| {
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: set_groups only calls setgroups, which is
        // async-signal-safe, allocates nothing and touches only the child;
        // the array is a constant. Root's gid 0 comes first, as the BSDs
        // want the effective gid there.
        unsafe {
            cmd.pre_exec(|| platform::host::set_groups(&ROOT_GROUPS));
        }
    });
    let child = String::from_utf8(server.request(b"")).unwrap();
    assert_eq!(
        parse_status(&child),
        want,
        "child of s6-ipcserver {options:?} with {env:?}"
    );
    let own = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    assert_eq!(
        parse_status(&own),
        want,
        "s6-ipcserver {options:?} with {env:?} itself"
    );
}

macro_rules! cases {
    ($($name:ident: $options:expr, $env:expr => $want:expr;)*) => {$(
        #[test]
        fn $name() {
            if common::skip_unless_procfs(stringify!($name))
                || common::skip_unless_root(stringify!($name))
            {
                return;
            }
            check(&$options, &$env, $want);
        }
    )*};
}

const NO_ENV: [(&str, &str); 0] = [];

cases! {
    // Nothing asked: nothing changes, root's groups included.
    no_drop_keeps_everything: [], NO_ENV => ids(0, 0, &ROOT_GROUPS);
    // A uid drop alone: the gid stays 0, and the groups become just it.
    uid_only: ["-u", "1000"], NO_ENV => ids(1000, 0, &[0]);
    gid_only: ["-g", "1001"], NO_ENV => ids(0, 1001, &[1001]);
    uid_and_gid: ["-u", "1000", "-g", "1001"], NO_ENV => ids(1000, 1001, &[1001]);
    // 0 means "leave as is".
    zero_uid_and_gid_leave_as_is: ["-u", "0", "-g", "0"], NO_ENV => ids(0, 0, &ROOT_GROUPS);
    // A list is exactly the list.
    list_only: ["-G", "5,6"], NO_ENV => ids(0, 0, &[5, 6]);
    list_and_uid: ["-G", "5,6", "-u", "1000"], NO_ENV => ids(1000, 0, &[5, 6]);
    list_and_gid: ["-G", "5,6", "-g", "1001"], NO_ENV => ids(0, 1001, &[5, 6]);
    list_uid_and_gid: ["-G", "5,6,7", "-u", "1000", "-g", "1001"], NO_ENV => ids(1000, 1001, &[5, 6, 7]);
    list_holding_the_gid: ["-G", "1001,5", "-u", "1000", "-g", "1001"], NO_ENV => ids(1000, 1001, &[5, 1001]);
    empty_list_and_ids: ["-G", "", "-u", "1000", "-g", "1001"], NO_ENV => ids(1000, 1001, &[]);
    // -U: all three from the environment.
    env_ids: ["-U"], [("UID", "1000"), ("GID", "1001"), ("GIDLIST", "5,6")] => ids(1000, 1001, &[5, 6]);
    env_ids_empty_list: ["-U"], [("UID", "1000"), ("GID", "1001"), ("GIDLIST", "")] => ids(1000, 1001, &[]);
    env_ids_zero_ids_set_only_the_list: ["-U"], [("UID", "0"), ("GID", "0"), ("GIDLIST", "7")] => ids(0, 0, &[7]);
    env_ids_uid_only: ["-U"], [("UID", "1000"), ("GID", "0"), ("GIDLIST", "8,9")] => ids(1000, 0, &[8, 9]);
}
