//! Dropping privileges, each case in a forked child so the test process
//! keeps its own ids: the ids and groups after every combination of
//! groups/gid/uid, the supplementary-group reset, the regain check, and
//! which step an unprivileged caller's drop fails at.

mod common;

use platform::privileges::{drop_to, Step, Target};

use common::{in_child, serial};

const ROOTS_GROUPS: [libc::gid_t; 3] = [0, 4, 27];

struct Ids {
    uid: [libc::uid_t; 3],
    gid: [libc::gid_t; 3],
}

/// Real, effective and (where the system tells) saved ids.
fn ids() -> Ids {
    cfg_if::cfg_if! {
        if #[cfg(any(target_os = "linux", target_os = "android"))] {
            let (mut ru, mut eu, mut su) = (0, 0, 0);
            let (mut rg, mut eg, mut sg) = (0, 0, 0);
            // SAFETY: out-pointers to live locals.
            unsafe {
                assert_eq!(libc::getresuid(&mut ru, &mut eu, &mut su), 0);
                assert_eq!(libc::getresgid(&mut rg, &mut eg, &mut sg), 0);
            }
            Ids { uid: [ru, eu, su], gid: [rg, eg, sg] }
        } else {
            // SAFETY: these cannot fail. The saved ids are not visible here:
            // the effective ones stand in for them.
            unsafe {
                Ids {
                    uid: [libc::getuid(), libc::geteuid(), libc::geteuid()],
                    gid: [libc::getgid(), libc::getegid(), libc::getegid()],
                }
            }
        }
    }
}

/// The groups the system should report for a requested `list` once the
/// effective gid is `primary`: exactly the list on Linux, the list plus
/// the primary gid where the kernel keeps it in the list (the BSDs).
fn expected_groups(list: &[libc::gid_t], primary: libc::gid_t) -> Vec<libc::gid_t> {
    let mut v = list.to_vec();
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        v.push(primary);
    }
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs `drop_to(target)` in a child that starts as root with some of
/// root's supplementary groups, and checks every id and group after it.
fn check_drop(target: Target) {
    in_child(move || {
        common::set_groups(&ROOTS_GROUPS)?;
        let before = ids();
        drop_to(&target).map_err(|e| format!("drop_to({target:?}): {e}"))?;
        let after = ids();

        let uid = if target.uid != 0 {
            target.uid
        } else {
            before.uid[1]
        };
        let gid = if target.gid != 0 {
            target.gid
        } else {
            before.gid[1]
        };
        ensure!(after.uid == [uid; 3], "{target:?}: uids {:?}", after.uid);
        ensure!(after.gid == [gid; 3], "{target:?}: gids {:?}", after.gid);

        let groups = common::groups();
        let want = match (&target.groups, target.is_noop()) {
            (_, true) => ROOTS_GROUPS.to_vec(),
            (Some(list), false) => expected_groups(list, gid),
            // No list given, so nothing of root's survives (README, Reference).
            (None, false) => vec![gid],
        };
        ensure!(
            groups == want,
            "{target:?}: groups {groups:?}, want {want:?}"
        );

        if target.uid != 0 {
            // SAFETY: plain integer arguments.
            let back = unsafe { libc::setuid(0) };
            ensure!(back == -1, "{target:?}: setuid(0) succeeded after the drop");
            // SAFETY: as above.
            let back = unsafe { libc::seteuid(0) };
            ensure!(
                back == -1,
                "{target:?}: seteuid(0) succeeded after the drop"
            );
        }
        Ok(())
    });
}

#[test]
fn every_combination_of_groups_gid_uid() {
    needs_root!();
    let _g = serial();
    for groups in [None, Some(vec![100, 200, 65534])] {
        for gid in [0, 65533] {
            for uid in [0, 65534] {
                check_drop(Target {
                    groups: groups.clone(),
                    gid,
                    uid,
                });
            }
        }
    }
}

#[test]
fn empty_group_list_empties_the_groups() {
    needs_root!();
    let _g = serial();
    check_drop(Target {
        groups: Some(vec![]),
        gid: 65533,
        uid: 65534,
    });
}

#[test]
fn noop_target_changes_nothing() {
    let _g = serial();
    assert!(Target::default().is_noop());
    // Even an unprivileged caller may "drop" to nothing.
    assert!(drop_to(&Target::default()).is_ok());
}

#[test]
fn reset_without_a_list_keeps_only_the_primary_gid() {
    needs_root!();
    let _g = serial();
    in_child(|| {
        common::set_groups(&ROOTS_GROUPS)?;
        drop_to(&Target {
            groups: None,
            gid: 0,
            uid: 65534,
        })
        .map_err(|e| e.to_string())?;
        let groups = common::groups();
        // The primary gid in effect after the drop is still root's.
        ensure!(groups == [0], "groups {groups:?}");
        Ok(())
    });
    in_child(|| {
        common::set_groups(&ROOTS_GROUPS)?;
        drop_to(&Target {
            groups: None,
            gid: 65533,
            uid: 0,
        })
        .map_err(|e| e.to_string())?;
        let groups = common::groups();
        ensure!(groups == [65533], "groups {groups:?}");
        Ok(())
    });
}

#[test]
fn an_unprivileged_caller_fails_at_setgroups() {
    needs_root!();
    let _g = serial();
    in_child(|| {
        common::set_ids(65534, 65534, 65534, 65534)?;
        for target in [
            Target {
                groups: None,
                gid: 1000,
                uid: 1000,
            },
            Target {
                groups: Some(vec![1000]),
                gid: 0,
                uid: 0,
            },
        ] {
            let e = match drop_to(&target) {
                Ok(()) => return Err(format!("{target:?}: drop succeeded without root")),
                Err(e) => e,
            };
            ensure!(e.step == Step::Setgroups, "{target:?}: step {:?}", e.step);
            ensure!(
                e.source.raw_os_error() == Some(libc::EPERM),
                "{target:?}: error {}",
                e.source
            );
            let msg = e.to_string();
            ensure!(msg.starts_with("setgroups: "), "message {msg:?}");
        }
        Ok(())
    });
}

/// Each later step names itself too. An id of -1 means "no change" to the
/// kernel and is refused as invalid, after setgroups has succeeded.
#[test]
fn later_steps_name_themselves() {
    needs_root!();
    let _g = serial();
    in_child(|| {
        let e = drop_to(&Target {
            groups: Some(vec![]),
            gid: libc::gid_t::MAX,
            uid: 0,
        })
        .err()
        .ok_or("setgid(-1) succeeded")?;
        ensure!(e.step == Step::Setgid, "step {:?}: {e}", e.step);
        ensure!(e.to_string().starts_with("setgid: "), "{e}");
        let e = drop_to(&Target {
            groups: None,
            gid: 0,
            uid: libc::uid_t::MAX,
        })
        .err()
        .ok_or("setuid(-1) succeeded")?;
        ensure!(e.step == Step::Setuid, "step {:?}: {e}", e.step);
        ensure!(e.to_string().starts_with("setuid: "), "{e}");
        Ok(())
    });
}

/// With SECBIT_NO_SETUID_FIXUP, Linux keeps the capabilities across
/// setuid, so uid 0 can be taken back: the drop must notice and fail.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn a_uid_that_can_be_regained_is_refused() {
    needs_root!();
    let _g = serial();
    const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
    let res = common::run_child(|| {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP) } != 0 {
            return Err(format!(
                "skip: PR_SET_SECUREBITS: {}",
                std::io::Error::last_os_error()
            ));
        }
        let e = drop_to(&Target {
            groups: None,
            gid: 65534,
            uid: 65534,
        })
        .err()
        .ok_or("the drop succeeded although uid 0 could be regained")?;
        ensure!(e.step == Step::RegainCheck, "step {:?}: {e}", e.step);
        ensure!(e.to_string().starts_with("regain check: "), "{e}");
        Ok(())
    });
    match res {
        Err(msg) if msg.contains("skip: ") => common::record_skip(
            "a_uid_that_can_be_regained_is_refused",
            &format!("needs CAP_SETPCAP to set securebits ({msg})"),
        ),
        res => res.unwrap(),
    }
}
