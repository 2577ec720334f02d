//! D. J. Bernstein's constant database: a reader that trusts nothing in the
//! file, and a writer whose output is byte for byte what skalibs' cdbmake
//! writes for the same records in the same order (checked against the C
//! s6-accessrules-cdb-from-fs), put in place by an atomic rename.
//!
//! Layout: 256 (pos, len) u32 LE pairs (2048 bytes); the records (klen u32
//! LE, dlen u32 LE, key, data); then the 256 hash tables of `len` (hash,
//! pos) u32 LE slots, the table chosen by `hash & 255`, the first slot
//! tried `(hash >> 8) % len`, the next ones after it, wrapping.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const HEADER: usize = 2048;

/// The cdb hash: h = 5381; h = ((h << 5) + h) ^ c, modulo 2^32.
pub fn hash(key: &[u8]) -> u32 {
    key.iter()
        .fold(5381u32, |h, &c| (h << 5).wrapping_add(h) ^ u32::from(c))
}

#[derive(Debug)]
pub enum CdbError {
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// The file is not a valid cdb: an offset or a length points outside it.
    Corrupt { path: PathBuf, problem: String },
    /// The records would not fit in a cdb (offsets are 32-bit).
    TooBig { path: PathBuf },
}

impl CdbError {
    pub fn is_corrupt(&self) -> bool {
        matches!(self, CdbError::Corrupt { .. })
    }

    fn corrupt(path: &Path, problem: String) -> CdbError {
        CdbError::Corrupt {
            path: path.to_path_buf(),
            problem,
        }
    }
}

impl fmt::Display for CdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CdbError::Io {
                action,
                path,
                source,
            } => write!(
                f,
                "unable to {action} {}: {}",
                path.display(),
                crate::error::Os(source)
            ),
            CdbError::Corrupt { path, problem } => {
                write!(f, "{} is not a valid cdb file: {problem}", path.display())
            }
            CdbError::TooBig { path } => {
                write!(
                    f,
                    "{}: too much data for a cdb file (4 GiB)",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for CdbError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CdbError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A cdb file, read whole into memory (rules files are small, and mapping
/// it would need unsafe code).
#[derive(Debug)]
pub struct Cdb {
    data: Vec<u8>,
    path: PathBuf,
}

impl Cdb {
    pub fn open(path: impl AsRef<Path>) -> Result<Cdb, CdbError> {
        let path = path.as_ref();
        let data = fs::read(path).map_err(|source| CdbError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Cdb::from_bytes(data, path)
    }

    /// `path` only names the data in messages. A file shorter than the
    /// header is refused here (the C reader refuses an empty one at open and
    /// a short one at the first lookup; its fs-from-cdb decompiles a short
    /// one as an empty database).
    pub fn from_bytes(data: Vec<u8>, path: impl Into<PathBuf>) -> Result<Cdb, CdbError> {
        let path = path.into();
        if data.len() < HEADER {
            return Err(CdbError::corrupt(
                &path,
                format!("{} bytes, shorter than the 2048-byte header", data.len()),
            ));
        }
        Ok(Cdb { data, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn u32_at(&self, pos: usize, what: &str) -> Result<u32, CdbError> {
        pos.checked_add(4)
            .and_then(|end| self.data.get(pos..end))
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| {
                CdbError::corrupt(&self.path, format!("{what} at {pos} is past the end"))
            })
    }

    fn bytes_at(&self, pos: usize, len: usize, what: &str) -> Result<&[u8], CdbError> {
        pos.checked_add(len)
            .and_then(|end| self.data.get(pos..end))
            .ok_or_else(|| {
                CdbError::corrupt(
                    &self.path,
                    format!("{what} of {len} bytes at {pos} is past the end"),
                )
            })
    }

    /// The record at `pos`: key, data, and where the next one starts.
    fn record_at(&self, pos: usize) -> Result<(&[u8], &[u8], usize), CdbError> {
        let klen = self.u32_at(pos, "record key length")? as usize;
        let dlen = self.u32_at(pos + 4, "record data length")? as usize;
        let key = self.bytes_at(pos + 8, klen, "record key")?;
        let data = self.bytes_at(pos + 8 + klen, dlen, "record data")?;
        Ok((key, data, pos + 8 + klen + dlen))
    }

    /// The data of the first record with this key.
    pub fn find(&self, key: &[u8]) -> Result<Option<&[u8]>, CdbError> {
        let h = hash(key);
        let slot = (h as usize & 255) * 8;
        let tpos = self.u32_at(slot, "header")? as usize;
        let tlen = self.u32_at(slot + 4, "header")? as usize;
        if tlen == 0 {
            return Ok(None);
        }
        // Checked once here so that the probe loop below only reads inside.
        self.bytes_at(tpos, tlen.saturating_mul(8), "hash table")?;
        let start = (h >> 8) as usize % tlen;
        for i in 0..tlen {
            let s = tpos + ((start + i) % tlen) * 8;
            let sh = self.u32_at(s, "hash slot")?;
            let rpos = self.u32_at(s + 4, "hash slot")? as usize;
            if rpos == 0 {
                return Ok(None);
            }
            if sh == h {
                let (k, d, _) = self.record_at(rpos)?;
                if k == key {
                    return Ok(Some(d));
                }
            }
        }
        Ok(None)
    }

    /// Every record, in file order (what cdbdump does: from the header to
    /// the first hash table).
    pub fn iter(&self) -> CdbIter<'_> {
        CdbIter {
            cdb: self,
            pos: HEADER,
            end: None,
            failed: false,
        }
    }
}

/// A record's key and data.
pub type Record<'a> = (&'a [u8], &'a [u8]);

pub struct CdbIter<'a> {
    cdb: &'a Cdb,
    pos: usize,
    end: Option<usize>,
    failed: bool,
}

impl<'a> CdbIter<'a> {
    fn step(&mut self) -> Result<Option<Record<'a>>, CdbError> {
        let cdb = self.cdb;
        let end = match self.end {
            Some(e) => e,
            None => {
                let e = cdb.u32_at(0, "header")? as usize;
                if e < HEADER || e > cdb.data.len() {
                    return Err(CdbError::corrupt(
                        &cdb.path,
                        format!(
                            "first hash table at {e}, outside {HEADER}..{}",
                            cdb.data.len()
                        ),
                    ));
                }
                self.end = Some(e);
                e
            }
        };
        if self.pos >= end {
            return Ok(None);
        }
        let (k, d, next) = cdb.record_at(self.pos)?;
        if next > end {
            return Err(CdbError::corrupt(
                &cdb.path,
                format!("record at {} runs into the hash tables", self.pos),
            ));
        }
        self.pos = next;
        Ok(Some((k, d)))
    }
}

impl<'a> Iterator for CdbIter<'a> {
    type Item = Result<Record<'a>, CdbError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = self.step().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

/// Builds a cdb in memory.
#[derive(Debug, Default)]
pub struct CdbMaker {
    out: Vec<u8>,
    /// (hash, record position), in insertion order.
    entries: Vec<(u32, u32)>,
}

impl CdbMaker {
    pub fn new() -> CdbMaker {
        CdbMaker {
            out: vec![0; HEADER],
            entries: Vec::new(),
        }
    }

    /// `path` only names the file in the error.
    pub fn add(&mut self, key: &[u8], data: &[u8], path: &Path) -> Result<(), CdbError> {
        let too_big = || CdbError::TooBig {
            path: path.to_path_buf(),
        };
        let pos = u32::try_from(self.out.len()).map_err(|_| too_big())?;
        let klen = u32::try_from(key.len()).map_err(|_| too_big())?;
        let dlen = u32::try_from(data.len()).map_err(|_| too_big())?;
        // The tables still to come must fit too: 16 bytes per record.
        let after = (self.out.len() as u64)
            + 8
            + u64::from(klen)
            + u64::from(dlen)
            + 16 * (self.entries.len() as u64 + 1);
        if after > u64::from(u32::MAX) {
            return Err(too_big());
        }
        self.out.extend_from_slice(&klen.to_le_bytes());
        self.out.extend_from_slice(&dlen.to_le_bytes());
        self.out.extend_from_slice(key);
        self.out.extend_from_slice(data);
        self.entries.push((hash(key), pos));
        Ok(())
    }

    /// The file. Tables are laid out in bucket order, each twice as long as
    /// its bucket, entries placed in insertion order with linear probing:
    /// this is what makes the output identical to the C compiler's.
    pub fn finish(mut self) -> Vec<u8> {
        let mut buckets: Vec<Vec<(u32, u32)>> = vec![Vec::new(); 256];
        for &(h, p) in &self.entries {
            buckets[h as usize & 255].push((h, p));
        }
        let mut header = Vec::with_capacity(HEADER);
        for bucket in &buckets {
            let tlen = bucket.len() * 2;
            // add() kept the total under 4 GiB, tables included.
            let tpos = self.out.len() as u32;
            header.extend_from_slice(&tpos.to_le_bytes());
            header.extend_from_slice(&(tlen as u32).to_le_bytes());
            let mut table = vec![(0u32, 0u32); tlen];
            for &(h, p) in bucket {
                let mut w = (h >> 8) as usize % tlen;
                // Record positions are never 0 (the header is there), so 0
                // marks a free slot; half the slots are free.
                while table[w].1 != 0 {
                    w = (w + 1) % tlen;
                }
                table[w] = (h, p);
            }
            for (h, p) in table {
                self.out.extend_from_slice(&h.to_le_bytes());
                self.out.extend_from_slice(&p.to_le_bytes());
            }
        }
        self.out[..HEADER].copy_from_slice(&header);
        self.out
    }
}

/// Puts `contents` at `target` with permissions `mode`, atomically: a new
/// file `target:s6-accessrules-cdb-from-fs:XXXXXX` (the C compiler's
/// naming) in the same directory, created exclusively, written, fsync'd,
/// chmod'ed, renamed over `target`. On failure the temporary is removed and
/// `target` is as it was.
pub fn write_atomic(target: &Path, contents: &[u8], mode: u32) -> Result<(), CdbError> {
    let (tmp, mut file) = create_temp(target)?;
    let r = (|| {
        let io = |action, source| CdbError::Io {
            action,
            path: tmp.clone(),
            source,
        };
        file.write_all(contents).map_err(|e| io("write", e))?;
        file.sync_all().map_err(|e| io("fsync", e))?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io("chmod", e))?;
        drop(file);
        fs::rename(&tmp, target).map_err(|source| CdbError::Io {
            action: "rename to",
            path: target.to_path_buf(),
            source,
        })
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

fn create_temp(target: &Path) -> Result<(PathBuf, File), CdbError> {
    let mut base = target.as_os_str().to_os_string();
    base.push(":s6-accessrules-cdb-from-fs:");
    let seed = RandomState::new();
    let mut last = None;
    for attempt in 0u32..100 {
        let mut n = seed.hash_one((std::process::id(), attempt));
        let mut name = base.clone();
        let mut suffix = String::with_capacity(6);
        const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        for _ in 0..6 {
            suffix.push(char::from(ALPHA[(n % ALPHA.len() as u64) as usize]));
            n /= ALPHA.len() as u64;
        }
        name.push(&suffix);
        let tmp = PathBuf::from(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
        {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(source) => {
                return Err(CdbError::Io {
                    action: "create",
                    path: tmp,
                    source,
                })
            }
        }
    }
    let (path, source) = last.unwrap_or_else(|| {
        (
            target.to_path_buf(),
            io::Error::from(io::ErrorKind::AlreadyExists),
        )
    });
    Err(CdbError::Io {
        action: "create",
        path,
        source,
    })
}

/// Reads at most `max` bytes of `file`.
pub(crate) fn read_at_most(file: &mut File, max: usize) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    file.take(max as u64).read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::TempDir;
    use super::*;

    fn make(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut m = CdbMaker::new();
        for (k, d) in records {
            m.add(k, d, Path::new("t")).unwrap();
        }
        m.finish()
    }

    #[test]
    fn hash_values() {
        assert_eq!(hash(b""), 5381);
        // 5381*33 ^ 'a' = 177573 ^ 97
        assert_eq!(hash(b"a"), 177573 ^ 97);
        // The table slot of "uid/0" in the C compiler's file: bucket 130,
        // hash 0x0afc0c82 (bytes 82 0c fc 0a in the dump).
        assert_eq!(hash(b"uid/0"), 0x0afc_0c82);
    }

    /// The C compiler's file for one rule, uid/0 allowing with nothing
    /// more: 2048-byte header, one 18-byte record at 2048, bucket 130's
    /// table of 2 slots at 2066, every other table empty at 2066 or 2082.
    fn c_single() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..256u32 {
            let (pos, len) = match i {
                0..=130 => (2066u32, if i == 130 { 2u32 } else { 0 }),
                _ => (2082, 0),
            };
            v.extend_from_slice(&pos.to_le_bytes());
            v.extend_from_slice(&len.to_le_bytes());
        }
        v.extend_from_slice(&[5, 0, 0, 0, 5, 0, 0, 0]);
        v.extend_from_slice(b"uid/0A\0\0\0\0");
        // slot (h >> 8) % 2 = 0x0afc0c % 2 = 0
        v.extend_from_slice(&0x0afc_0c82u32.to_le_bytes());
        v.extend_from_slice(&2048u32.to_le_bytes());
        v.extend_from_slice(&[0; 8]);
        v
    }

    #[test]
    fn writes_what_c_writes() {
        assert_eq!(make(&[(b"uid/0", b"A\0\0\0\0")]), c_single());
    }

    #[test]
    fn reads_hand_built_file() {
        let c = Cdb::from_bytes(c_single(), "c").unwrap();
        assert_eq!(c.find(b"uid/0").unwrap(), Some(&b"A\0\0\0\0"[..]));
        assert_eq!(c.find(b"uid/1").unwrap(), None);
        let all: Vec<_> = c.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(all, [(&b"uid/0"[..], &b"A\0\0\0\0"[..])]);
    }

    #[test]
    fn roundtrip_many() {
        let keys: Vec<Vec<u8>> = (0..1000).map(|i| format!("uid/{i}").into_bytes()).collect();
        let mut recs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (&k[..], &k[4..])).collect();
        recs.push((b"", b"empty key"));
        recs.push((b"uid/7", b"second"));
        let c = Cdb::from_bytes(make(&recs), "m").unwrap();
        for k in &keys {
            assert_eq!(c.find(k).unwrap(), Some(&k[4..]));
        }
        assert_eq!(c.find(b"").unwrap(), Some(&b"empty key"[..]));
        // The first of two records with one key is the one found.
        assert_eq!(c.find(b"uid/7").unwrap(), Some(&b"7"[..]));
        assert_eq!(c.find(b"gid/1").unwrap(), None);
        assert_eq!(c.iter().count(), 1002);
        let empty = Cdb::from_bytes(make(&[]), "e").unwrap();
        assert_eq!(empty.find(b"x").unwrap(), None);
        assert_eq!(empty.iter().count(), 0);
    }

    #[test]
    fn truncated_and_damaged_files_never_panic() {
        let good = make(&[
            (b"uid/0", b"A\0\0\0\0"),
            (b"gid/100", b"D"),
            (b"uid/default", b"A\0\x04X=1\0\0\0"),
        ]);
        for n in 0..good.len() {
            let r = Cdb::from_bytes(good[..n].to_vec(), "t");
            if n < HEADER {
                assert!(r.unwrap_err().is_corrupt());
                continue;
            }
            let c = r.unwrap();
            for k in [&b"uid/0"[..], b"gid/100", b"uid/default", b"nope"] {
                let _ = c.find(k);
            }
            let _ = c.iter().count();
        }
        // Every byte set to a few values, at every position: offsets and
        // lengths of all kinds point anywhere.
        let mut x = 0x2545_f491u32;
        for pos in 0..good.len() {
            for v in [0u8, 0xff, 0x7f, 8, (x >> 24) as u8] {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let mut bad = good.clone();
                bad[pos] = v;
                let c = Cdb::from_bytes(bad, "t").unwrap();
                for k in [&b"uid/0"[..], b"gid/100", b"uid/default", b"nope"] {
                    let _ = c.find(k);
                }
                let _ = c.iter().take(10).count();
            }
        }
        // A table claiming 2^32-1 slots.
        let mut bad = good.clone();
        let slot = (hash(b"uid/0") as usize & 255) * 8;
        bad[slot + 4..slot + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let c = Cdb::from_bytes(bad, "t").unwrap();
        assert!(c.find(b"uid/0").unwrap_err().is_corrupt());
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let t = TempDir::new("cdbw");
        let target = t.path().join("rules.cdb");
        fs::write(&target, b"old").unwrap();
        write_atomic(&target, b"new", 0o640).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o640
        );
        write_atomic(&target, b"newer", 0o600).unwrap();
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o7777,
            0o600
        );
        // Renaming over a non-empty directory fails: the temporary goes,
        // the directory stays.
        let d = t.path().join("dir");
        fs::create_dir(&d).unwrap();
        fs::write(d.join("f"), b"x").unwrap();
        let e = write_atomic(&d, b"x", 0o600).unwrap_err();
        assert!(e.to_string().contains("rename"), "{e}");
        let names: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // No directory to create the temporary in.
        let e = write_atomic(&t.path().join("no/x.cdb"), b"x", 0o600).unwrap_err();
        assert!(e.to_string().starts_with("unable to create "), "{e}");
    }
}
