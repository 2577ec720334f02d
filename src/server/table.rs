//! Who is being served: connections whose spawn is in flight (by token),
//! live children (by pid), and how many connections each uid has, both
//! kinds counted. A connection counts from its accept to its child's exit,
//! so the limits hold whatever the spawners are doing. The maps are sized
//! at start-up, the children's for `maxconn` and those of the spawns in
//! flight for as many as can be in flight at once, so the per-connection
//! path does not allocate, and every operation is O(1).
//!
//! The table also holds the reaping rule (`may_reap`): a child is reaped
//! only once its spawn has been reported, so that no pid is taken from the
//! C library, and a pid the table holds is never reused while it does.

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

/// A connection whose spawn is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<T> {
    pub uid: libc::uid_t,
    /// What the caller needs once the spawn returns.
    pub data: T,
    /// Signals that arrived meanwhile, owed to the child.
    pub owed: Owed,
    /// The denial that waited for this spawn's report, if one did
    /// ([`ConnectionTable::await_uid`]).
    pub awaited: Option<u64>,
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
    /// The mark of the last `await_uid`.
    await_round: u64,
}

impl<T: Copy> ConnectionTable<T> {
    /// A table for `maxconn` connections, of which at most `in_flight`
    /// are ever pending at once. Sizing the pending maps for `maxconn`
    /// instead would cost memory, not speed: their entries land all over
    /// them, and with 500 connections held they had touched some 90 kB
    /// more (1,648 against 1,560 kB resident, three runs each).
    pub fn with_capacity(maxconn: u32, in_flight: usize) -> ConnectionTable<T> {
        let n = maxconn as usize;
        ConnectionTable {
            pending: IdMap::with_capacity_and_hasher(in_flight, Default::default()),
            next_token: 0,
            children: IdMap::with_capacity_and_hasher(n, Default::default()),
            per_uid: IdMap::with_capacity_and_hasher(n, Default::default()),
            await_round: 0,
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
                awaited: None,
            },
        );
        *self.per_uid.entry(uid).or_insert(0) += 1;
        token
    }

    /// The spawn of `token` returned `pid`: a live child from now on.
    /// `None` for a token that is not pending (it cannot happen: each
    /// report comes once).
    pub fn spawned(&mut self, token: u64, pid: libc::pid_t) -> Option<Pending<T>> {
        let p = self.pending.remove(&token)?;
        self.children.insert(pid, p.uid);
        Some(p)
    }

    /// The spawn of `token` failed: the connection is gone.
    pub fn abandon(&mut self, token: u64) -> Option<Pending<T>> {
        let p = self.pending.remove(&token)?;
        self.count_down(p.uid);
        Some(p)
    }

    /// Whether a child that exited, `pid`, may be reaped now. One the
    /// table knows, yes. Any other, only while no spawn is in flight: it
    /// may be a spawn's whose report has not come (it will, and name it),
    /// or one whose exec failed, which the C library's posix_spawn reaps
    /// itself, by pid: reaped here first, its pid could go to a new
    /// child, which the C library would then reap in its place. With no
    /// spawn in flight, it is a stranger (a child of what ran in this
    /// process before its exec), and nobody else will reap it.
    pub fn may_reap(&self, pid: libc::pid_t) -> bool {
        self.children.contains_key(&pid) || self.pending.is_empty()
    }

    /// A child was reaped; returns its uid if it was a live connection.
    pub fn reaped(&mut self, pid: libc::pid_t) -> Option<libc::uid_t> {
        let uid = self.children.remove(&pid)?;
        self.count_down(uid);
        Some(uid)
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

    /// Marks the spawns in flight of `uid` that no denial has waited for
    /// yet, and returns the mark (`None` if there were none). A client at
    /// its `-C` limit only because of such a spawn, whose child may have
    /// exited already, is worth a short wait for the report; a spawn that
    /// does not report in that time (its child stopped before its exec)
    /// is not waited for again. (At most one spawn per spawner is in
    /// flight: a short walk.)
    pub fn await_uid(&mut self, uid: libc::uid_t) -> Option<u64> {
        self.await_round += 1;
        let round = self.await_round;
        let mut any = false;
        for p in self
            .pending
            .values_mut()
            .filter(|p| p.uid == uid && p.awaited.is_none())
        {
            p.awaited = Some(round);
            any = true;
        }
        any.then_some(round)
    }

    /// Whether a spawn marked by `await_uid` as `round` is still in flight.
    pub fn awaiting(&self, round: u64) -> bool {
        self.pending.values().any(|p| p.awaited == Some(round))
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
        assert!(t.spawned(token, pid).is_some());
    }

    #[test]
    fn counts_follow_accepts_and_exits() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        live(&mut t, 1000, 10);
        live(&mut t, 1000, 11);
        live(&mut t, 0, 12);
        assert_eq!((t.live(), t.count(1000), t.count(0)), (3, 2, 1));
        assert_eq!(t.reaped(10), Some(1000));
        assert_eq!(t.reaped(10), None, "a pid is removed once");
        assert_eq!(t.reaped(99), None, "unknown pids are not ours");
        assert_eq!((t.live(), t.count(1000)), (2, 1));
        t.reaped(11);
        t.reaped(12);
        assert_eq!((t.live(), t.count(1000), t.count(0)), (0, 0, 0));
        assert!(
            t.per_uid.is_empty(),
            "no entry is left for a uid with no child"
        );
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
        assert!(t.spawned(b, 20).is_some());
        assert_eq!((t.live(), t.count(1000)), (1, 1), "spawned: the same count");
        assert_eq!(t.reaped(20), Some(1000));
        assert_eq!(t.live(), 0);
    }

    /// The reaping rule: while a spawn is in flight, only children whose
    /// spawn was reported may be reaped; a failed spawn's child belongs
    /// to the C library.
    #[test]
    fn only_reported_children_are_reaped_while_a_spawn_is_in_flight() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        live(&mut t, 1000, 30);
        assert!(t.may_reap(30), "reported");
        assert!(t.may_reap(31), "nothing in flight: a stranger");
        let a = t.begin(1000, ());
        assert!(t.may_reap(30), "reported, still");
        assert!(
            !t.may_reap(31),
            "in flight: perhaps the failed exec's child the C library reaps"
        );
        assert!(t.spawned(a, 31).is_some());
        assert!(t.may_reap(31), "now reported");
        let b = t.begin(1000, ());
        assert!(!t.may_reap(32));
        assert!(t.abandon(b).is_some(), "its exec failed");
        assert!(t.may_reap(32), "nothing in flight again");
    }

    /// A pid is in the table from its report to its reap, and only the
    /// table's owner reaps it: a pid the table holds names the same
    /// process all along, so signals and counts never reach another.
    #[test]
    fn a_reported_pid_counts_until_it_is_reaped() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        live(&mut t, 1000, 40);
        let _stuck = t.begin(1000, ());
        assert_eq!(t.pids().collect::<Vec<_>>(), vec![40]);
        assert_eq!(t.count(1000), 2);
        assert_eq!(t.reaped(41), None, "never reported: not counted down");
        assert_eq!(t.count(1000), 2);
        assert_eq!(t.reaped(40), Some(1000));
        assert_eq!((t.count(1000), t.pids().count()), (1, 0));
    }

    #[test]
    fn a_denial_waits_for_each_spawn_in_flight_once() {
        let mut t = ConnectionTable::with_capacity(4, 4);
        let a = t.begin(1000, ());
        let other = t.begin(2000, ());
        let first = t.await_uid(1000).expect("a's spawn: worth waiting for");
        assert!(t.awaiting(first));
        assert_eq!(t.await_uid(1000), None, "not twice");
        let b = t.begin(1000, ());
        let second = t.await_uid(1000).expect("a new spawn");
        assert!(t.spawned(b, 11).is_some());
        assert!(
            !t.awaiting(second),
            "b reported: a, still stuck, is not waited for again"
        );
        assert!(t.awaiting(first));
        assert!(t.spawned(a, 10).is_some());
        assert!(!t.awaiting(first));
        assert!(t.await_uid(2000).is_some(), "another uid's is its own");
        assert!(t.abandon(other).is_some());
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
        let p = t.spawned(a, 51).unwrap();
        assert!(p.owed.term_cont && !p.owed.kill);
        let p = t.spawned(b, 52).unwrap();
        assert_eq!(p.owed, Owed::default(), "came after");
    }
}
