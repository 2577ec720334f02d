//! Who is being served: connections whose spawn is in flight (by token),
//! live children (by pid), and how many connections each uid has, both
//! kinds counted. A connection counts from its accept to its child's exit,
//! so the limits hold whatever the spawners are doing. The maps are sized
//! at start-up, the children's for `maxconn` and those of the spawns in
//! flight for as many as can be in flight at once, so the per-connection
//! path does not allocate, and every operation is O(1). (Only `early` can
//! outgrow its size: while a spawn is stuck, it keeps every process reaped
//! meanwhile that was not a live connection.)

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// pids and uids are small integers chosen by the kernel, not by clients:
/// a multiplicative hash is enough and much cheaper than SipHash.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_i32(&mut self, n: i32) {
        self.write_u32(n as u32);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The uid under which connections are counted when credentials are not
/// looked up (`-P`): they all share one count.
pub const ANONYMOUS: libc::uid_t = libc::uid_t::MAX;

/// How a child ended, as the `end` line says it: `("exitcode", 0)`,
/// `("signal", 9)`.
pub type Ending = (&'static str, i32);

/// A connection whose spawn is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<T> {
    pub uid: libc::uid_t,
    /// What the caller needs once the spawn returns.
    pub data: T,
    /// Signals that arrived meanwhile, owed to the child.
    pub owed: Owed,
}

/// Signals owed to a child whose pid was not known when they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Owed {
    pub term_cont: bool,
    pub kill: bool,
}

pub struct ConnectionTable<T> {
    pending: IdMap<u64, Pending<T>>,
    next_token: u64,
    children: IdMap<libc::pid_t, libc::uid_t>,
    per_uid: IdMap<libc::uid_t, u32>,
    /// Children reaped while spawns were in flight, which may be theirs:
    /// each with the next token at the time of its reap. Only a spawn
    /// begun before that reap (a smaller token) can claim it; once every
    /// such spawn has been reported, the entry is dropped. So a pid that
    /// was never ours (a child the process had before its exec, or one
    /// whose exec failed, which the C library reaps itself unless the
    /// loop got there first) is forgotten, and a later child that the
    /// kernel gives the same pid is not mistaken for it.
    early: IdMap<libc::pid_t, (Ending, u64)>,
}

/// What a report made of a pending connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Spawned<T> {
    /// Now a live child.
    Live(Pending<T>),
    /// It had exited already; it is gone, and counted down.
    Ended(Pending<T>, Ending),
}

impl<T: Copy> ConnectionTable<T> {
    /// A table for `maxconn` connections, of which at most `in_flight`
    /// are ever pending at once. Sizing the pending maps for `maxconn`
    /// instead would cost memory, not speed: their entries land all over
    /// them, and with 500 connections held they had touched some 90 kB
    /// more (doc/performance.md).
    pub fn with_capacity(maxconn: u32, in_flight: usize) -> ConnectionTable<T> {
        let n = maxconn as usize;
        ConnectionTable {
            pending: IdMap::with_capacity_and_hasher(in_flight, Default::default()),
            next_token: 0,
            children: IdMap::with_capacity_and_hasher(n, Default::default()),
            per_uid: IdMap::with_capacity_and_hasher(n, Default::default()),
            early: IdMap::with_capacity_and_hasher(in_flight, Default::default()),
        }
    }

    /// How many connections there are, spawned or in flight.
    pub fn live(&self) -> u32 {
        (self.children.len() + self.pending.len()) as u32
    }

    /// How many connections `uid` has, spawned or in flight.
    pub fn count(&self, uid: libc::uid_t) -> u32 {
        self.per_uid.get(&uid).copied().unwrap_or(0)
    }

    /// Counts a new connection whose spawn is about to be handed over;
    /// returns its token.
    pub fn begin(&mut self, uid: libc::uid_t, data: T) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(
            token,
            Pending {
                uid,
                data,
                owed: Owed::default(),
            },
        );
        *self.per_uid.entry(uid).or_insert(0) += 1;
        token
    }

    /// The spawn of `token` returned `pid`. `None` for a token that is not
    /// pending (it cannot happen: each report comes once).
    pub fn spawned(&mut self, token: u64, pid: libc::pid_t) -> Option<Spawned<T>> {
        let p = self.pending.remove(&token)?;
        let result = match self.early.remove(&pid) {
            Some((ending, reaped_before)) if token < reaped_before => {
                self.count_down(p.uid);
                Spawned::Ended(p, ending)
            }
            // Absent, or reaped before this spawn began: another process.
            _ => {
                self.children.insert(pid, p.uid);
                Spawned::Live(p)
            }
        };
        self.forget_early();
        Some(result)
    }

    /// The spawn of `token` failed: the connection is gone.
    pub fn abandon(&mut self, token: u64) -> Option<Pending<T>> {
        let p = self.pending.remove(&token)?;
        self.count_down(p.uid);
        self.forget_early();
        Some(p)
    }

    /// A child was reaped; returns its uid if it was a live connection. One
    /// reaped while spawns are in flight may be one of theirs: it is kept
    /// for their reports.
    pub fn reaped(&mut self, pid: libc::pid_t, ending: Ending) -> Option<libc::uid_t> {
        match self.children.remove(&pid) {
            Some(uid) => {
                self.count_down(uid);
                Some(uid)
            }
            None => {
                if !self.pending.is_empty() {
                    self.early.insert(pid, (ending, self.next_token));
                }
                None
            }
        }
    }

    /// Drops the early exits that no spawn in flight can claim: those
    /// reaped after every pending spawn began. (At most one per spawner
    /// is pending, so this is a short walk.)
    fn forget_early(&mut self) {
        if self.early.is_empty() {
            return;
        }
        let oldest = self.pending.keys().copied().min().unwrap_or(u64::MAX);
        self.early
            .retain(|_, &mut (_, reaped_before)| reaped_before > oldest);
    }

    fn count_down(&mut self, uid: libc::uid_t) {
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
    }

    /// The live children's pids.
    pub fn pids(&self) -> impl Iterator<Item = libc::pid_t> + '_ {
        self.children.keys().copied()
    }

    /// Whether spawns are in flight.
    pub fn in_flight(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Records that every connection in flight is owed `owed` as well.
    pub fn owe(&mut self, owed: Owed) {
        for p in self.pending.values_mut() {
            p.owed.term_cont |= owed.term_cont;
            p.owed.kill |= owed.kill;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(t: &mut ConnectionTable<()>, uid: libc::uid_t, pid: libc::pid_t) {
        let token = t.begin(uid, ());
        assert!(matches!(t.spawned(token, pid), Some(Spawned::Live(_))));
    }

    #[test]
    fn counts_follow_accepts_and_exits() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        live(&mut t, 1000, 10);
        live(&mut t, 1000, 11);
        live(&mut t, 0, 12);
        assert_eq!((t.live(), t.count(1000), t.count(0)), (3, 2, 1));
        assert_eq!(t.reaped(10, ("exitcode", 0)), Some(1000));
        assert_eq!(t.reaped(10, ("exitcode", 0)), None, "a pid is removed once");
        assert_eq!(
            t.reaped(99, ("exitcode", 0)),
            None,
            "unknown pids are not ours"
        );
        assert_eq!((t.live(), t.count(1000)), (2, 1));
        t.reaped(11, ("exitcode", 0));
        t.reaped(12, ("signal", 9));
        assert_eq!((t.live(), t.count(1000), t.count(0)), (0, 0, 0));
        assert!(
            t.per_uid.is_empty(),
            "no entry is left for a uid with no child"
        );
        assert!(t.early.is_empty(), "nothing was in flight");
    }

    #[test]
    fn a_connection_counts_from_its_accept() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        let a = t.begin(1000, ());
        let b = t.begin(1000, ());
        assert_eq!((t.live(), t.count(1000)), (2, 2), "in flight, counted");
        assert!(t.abandon(a).is_some());
        assert_eq!(
            (t.live(), t.count(1000)),
            (1, 1),
            "a failed spawn counts down"
        );
        assert!(t.abandon(a).is_none(), "once");
        assert!(matches!(t.spawned(b, 20), Some(Spawned::Live(_))));
        assert_eq!((t.live(), t.count(1000)), (1, 1), "spawned: the same count");
        assert_eq!(t.reaped(20, ("exitcode", 0)), Some(1000));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_child_reaped_before_its_report_is_claimed_by_it_once() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        let a = t.begin(1000, ());
        let b = t.begin(1000, ());
        assert_eq!(t.reaped(30, ("exitcode", 3)), None, "not known yet");
        assert_eq!(t.live(), 2, "still counted until the report");
        match t.spawned(a, 30) {
            Some(Spawned::Ended(p, ending)) => {
                assert_eq!((p.uid, ending), (1000, ("exitcode", 3)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((t.live(), t.count(1000)), (1, 1));
        assert!(matches!(t.spawned(b, 31), Some(Spawned::Live(_))));
        assert_eq!(t.live(), 1);
        assert_eq!(t.reaped(31, ("exitcode", 0)), Some(1000));
        assert_eq!(t.live(), 0);
    }

    #[test]
    fn a_stranger_reaped_while_spawns_are_in_flight_is_forgotten() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        let a = t.begin(1000, ());
        t.reaped(40, ("exitcode", 0)); // not ours: no report will name it
        assert!(matches!(t.spawned(a, 41), Some(Spawned::Live(_))));
        assert!(t.early.is_empty(), "nothing in flight: forgotten");
        let b = t.begin(1000, ());
        assert!(
            matches!(t.spawned(b, 40), Some(Spawned::Live(_))),
            "a later child with that pid is live"
        );
    }

    /// A stranger reaped while a spawn is stuck in flight, whose pid the
    /// kernel then gives to a new child (a pid wrap): the new child is
    /// live, not ended.
    #[test]
    fn a_reused_pid_is_not_taken_for_an_early_exit() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        let stuck = t.begin(1000, ());
        t.reaped(60, ("exitcode", 0)); // not ours
        let b = t.begin(1000, ());
        assert!(
            matches!(t.spawned(b, 60), Some(Spawned::Live(_))),
            "begun after the reap: a new process with that pid"
        );
        assert_eq!(t.live(), 2);
        assert_eq!(t.reaped(60, ("exitcode", 0)), Some(1000));
        // An early exit that the stuck spawn could claim stays for it, and
        // is dropped once it is reported.
        t.reaped(61, ("exitcode", 1));
        assert!(t.early.contains_key(&61));
        let c = t.begin(1000, ());
        assert!(matches!(t.spawned(c, 62), Some(Spawned::Live(_))));
        assert!(
            t.early.contains_key(&61),
            "the stuck spawn may still claim it"
        );
        assert!(matches!(t.spawned(stuck, 63), Some(Spawned::Live(_))));
        assert!(
            t.early.is_empty(),
            "no spawn in flight can claim it any more"
        );
    }

    #[test]
    fn signals_owed_go_to_connections_in_flight_only() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        live(&mut t, 1, 50);
        let a = t.begin(1, ());
        t.owe(Owed {
            term_cont: true,
            kill: false,
        });
        let b = t.begin(1, ());
        match t.spawned(a, 51) {
            Some(Spawned::Live(p)) => assert!(p.owed.term_cont && !p.owed.kill),
            other => panic!("{other:?}"),
        }
        match t.spawned(b, 52) {
            Some(Spawned::Live(p)) => assert_eq!(p.owed, Owed::default(), "came after"),
            other => panic!("{other:?}"),
        }
    }
}
