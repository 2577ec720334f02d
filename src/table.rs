//! Who is being served: live children by pid, and how many of them each uid
//! has. Both maps are sized for `maxconn` at start-up, so the per-connection
//! path never allocates, and every operation is O(1).

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
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The uid under which connections are counted when credentials are not
/// looked up (`-P`): they all share one count.
pub const ANONYMOUS: libc::uid_t = libc::uid_t::MAX;

pub struct ConnectionTable {
    children: IdMap<libc::pid_t, libc::uid_t>,
    per_uid: IdMap<libc::uid_t, u32>,
}

impl ConnectionTable {
    pub fn with_capacity(maxconn: u32) -> ConnectionTable {
        let n = maxconn as usize;
        ConnectionTable {
            children: IdMap::with_capacity_and_hasher(n, Default::default()),
            per_uid: IdMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    /// How many children are alive.
    pub fn live(&self) -> u32 {
        self.children.len() as u32
    }

    /// How many children `uid` has.
    pub fn count(&self, uid: libc::uid_t) -> u32 {
        self.per_uid.get(&uid).copied().unwrap_or(0)
    }

    /// Records a new child; returns its uid's new count.
    pub fn insert(&mut self, pid: libc::pid_t, uid: libc::uid_t) -> u32 {
        self.children.insert(pid, uid);
        let n = self.per_uid.entry(uid).or_insert(0);
        *n += 1;
        *n
    }

    /// Forgets a child that exited; returns its uid, or `None` if the pid
    /// was not ours.
    pub fn remove(&mut self, pid: libc::pid_t) -> Option<libc::uid_t> {
        let uid = self.children.remove(&pid)?;
        if let Some(n) = self.per_uid.get_mut(&uid) {
            *n -= 1;
            if *n == 0 {
                self.per_uid.remove(&uid);
            }
        }
        Some(uid)
    }

    /// Each uid with children, and how many.
    pub fn per_uid(&self) -> impl Iterator<Item = (libc::uid_t, u32)> + '_ {
        self.per_uid.iter().map(|(&uid, &n)| (uid, n))
    }

    pub fn pids(&self) -> impl Iterator<Item = libc::pid_t> + '_ {
        self.children.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_inserts_and_removals() {
        let mut t = ConnectionTable::with_capacity(4);
        assert_eq!(t.insert(10, 1000), 1);
        assert_eq!(t.insert(11, 1000), 2);
        assert_eq!(t.insert(12, 0), 1);
        assert_eq!((t.live(), t.count(1000), t.count(0)), (3, 2, 1));
        assert_eq!(t.remove(10), Some(1000));
        assert_eq!(t.remove(10), None, "a pid is removed once");
        assert_eq!(t.remove(99), None, "unknown pids are not ours");
        assert_eq!((t.live(), t.count(1000)), (2, 1));
        t.remove(11);
        t.remove(12);
        assert_eq!((t.live(), t.count(1000), t.count(0)), (0, 0, 0));
        assert!(
            t.per_uid.is_empty(),
            "no entry is left for a uid with no child"
        );
    }
}
