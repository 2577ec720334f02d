//! The value a rule has in the cdb, as the C s6-accessrules-cdb-from-fs
//! writes it: `D`, or `A`, a 16-bit big-endian env length, the env
//! (`NAME=value\0` to set, `NAME\0` to unset), a 16-bit big-endian exec
//! length and the exec bytes. Both lengths are always there (`A\0\0\0\0`).

use super::{Allow, Decision, EnvChange};

/// The largest env, in compiled bytes, that the C cdb readers accept: both
/// s6-ipcserver-access -x and s6-accessrules-fs-from-cdb refuse a value
/// whose env or exec length is over 4096 ("Invalid argument", exit 111).
/// The C compiler itself lets up to 4100 bytes through (`ABC` + 4095 bytes
/// compiles, `ABCD` + 4095 exits 100 "env too big"; `V1` + 2046 and `V2` +
/// 2046 compile, + 2047 each do not), writing files its own readers then
/// refuse; ours stops at 4096, the limit the doc gives, so that what it
/// compiles can be read.
pub const MAX_ENV_LEN: usize = 4096;

/// How much of an `exec` file is kept, in both the compiler and the
/// directory reader (a 5000-byte file reaches execlineb as 4096 bytes); the
/// compiler warns "possibly truncated file" from exactly 4096 bytes on.
pub const MAX_EXEC_LEN: usize = 4096;

/// How much of an env file is read before its first line is taken: a
/// 5000-byte one-line file gives a 4095-byte value, in both C readers.
pub const MAX_ENV_FILE_READ: usize = 4095;

/// The cdb value of a rule. Fails only if a length does not fit in 16 bits;
/// the compiler has checked the C limits before.
pub fn encode(d: &Decision) -> Result<Vec<u8>, String> {
    let allow = match d {
        Decision::Deny => return Ok(b"D".to_vec()),
        Decision::Allow(a) => a,
    };
    let env = encode_env(&allow.env);
    let exec: &[u8] = allow.exec.as_deref().unwrap_or(b"");
    let envlen = u16::try_from(env.len()).map_err(|_| format!("env of {} bytes", env.len()))?;
    let execlen = u16::try_from(exec.len()).map_err(|_| format!("exec of {} bytes", exec.len()))?;
    let mut v = Vec::with_capacity(5 + env.len() + exec.len());
    v.push(b'A');
    v.extend_from_slice(&envlen.to_be_bytes());
    v.extend_from_slice(&env);
    v.extend_from_slice(&execlen.to_be_bytes());
    v.extend_from_slice(exec);
    Ok(v)
}

pub fn encode_env(env: &[EnvChange]) -> Vec<u8> {
    let mut v = Vec::new();
    for change in env {
        match change {
            EnvChange::Set { name, value } => {
                v.extend_from_slice(name);
                v.push(b'=');
                v.extend_from_slice(value);
            }
            EnvChange::Unset { name } => v.extend_from_slice(name),
        }
        v.push(0);
    }
    v
}

/// The bytes `encode_env` would write, without writing them.
pub fn env_len(env: &[EnvChange]) -> usize {
    env.iter()
        .map(|c| match c {
            EnvChange::Set { name, value } => name.len() + value.len() + 2,
            EnvChange::Unset { name } => name.len() + 1,
        })
        .sum()
}

/// A value as the C s6-ipcserver-access reads it (observed with hand-made
/// cdb files): only the first byte of a deny counts (`Djunk` denies); an
/// allow must be exactly `A`, envlen, env, execlen, exec (a short value or
/// one byte more is "Invalid argument", exit 111); anything else is an
/// error. The env is read as `env_lenient` says.
pub fn decode(v: &[u8]) -> Result<Decision, String> {
    decode_with(v, false)
}

/// A value as s6-accessrules-fs-from-cdb accepts it: as `decode`, but a
/// deny is `D` alone and every env entry is non-empty and NUL-terminated
/// (C fails on `Dxyz`, on an env without its last NUL, on an empty entry).
/// C creates an empty rule directory for an unknown type; this reports it.
pub fn decode_strict(v: &[u8]) -> Result<Decision, String> {
    decode_with(v, true)
}

fn decode_with(v: &[u8], strict: bool) -> Result<Decision, String> {
    match v.first() {
        None => Err("empty value".into()),
        Some(b'D') if !strict || v.len() == 1 => Ok(Decision::Deny),
        Some(b'D') => Err(format!("{} bytes after the D of a deny", v.len() - 1)),
        Some(b'A') => {
            let (env, rest) = take16(&v[1..]).ok_or("allow without its env length")?;
            let (exec, rest) =
                take16(rest).ok_or("env length past the value, or no exec length")?;
            if env.len() > MAX_ENV_LEN || exec.len() > MAX_EXEC_LEN {
                return Err(format!(
                    "env of {} bytes or exec of {} bytes, over the {MAX_ENV_LEN} allowed",
                    env.len(),
                    exec.len()
                ));
            }
            if !rest.is_empty() {
                return Err(format!(
                    "exec length {} does not end the value ({} bytes more)",
                    exec.len(),
                    rest.len()
                ));
            }
            let env = if strict {
                env_strict(env)?
            } else {
                env_lenient(env)
            };
            let exec = if exec.is_empty() {
                None
            } else {
                Some(exec.to_vec())
            };
            Ok(Decision::Allow(Allow { env, exec }))
        }
        Some(&c) => Err(format!(
            "rule type {} is neither A nor D",
            std::ascii::escape_default(c)
        )),
    }
}

/// A 16-bit big-endian length and that many bytes, and what follows.
fn take16(v: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*v.first()?, *v.get(1)?]));
    let rest = &v[2..];
    (len <= rest.len()).then(|| rest.split_at(len))
}

/// The env as the C s6-ipcserver-access applies it (observed): entries end
/// at NUL; empty entries are skipped (`C\0\0D\0` unsets C and D); bytes
/// after the last NUL are dropped (`C\0B=1` unsets C and sets nothing).
pub fn env_lenient(env: &[u8]) -> Vec<EnvChange> {
    let mut out = Vec::new();
    let mut rest = env;
    while let Some(end) = rest.iter().position(|&b| b == 0) {
        if end > 0 {
            out.push(entry(&rest[..end]));
        }
        rest = &rest[end + 1..];
    }
    out
}

fn env_strict(env: &[u8]) -> Result<Vec<EnvChange>, String> {
    if env.is_empty() {
        return Ok(Vec::new());
    }
    let body = env
        .strip_suffix(b"\0")
        .ok_or("env does not end with a NUL byte")?;
    body.split(|&b| b == 0)
        .map(|e| {
            if e.is_empty() {
                Err("empty env entry".to_string())
            } else {
                Ok(entry(e))
            }
        })
        .collect()
}

fn entry(e: &[u8]) -> EnvChange {
    match e.iter().position(|&b| b == b'=') {
        Some(eq) => EnvChange::Set {
            name: e[..eq].to_vec(),
            value: e[eq + 1..].to_vec(),
        },
        None => EnvChange::Unset { name: e.to_vec() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: &str, v: &str) -> EnvChange {
        EnvChange::Set {
            name: n.into(),
            value: v.into(),
        }
    }
    fn unset(n: &str) -> EnvChange {
        EnvChange::Unset { name: n.into() }
    }

    #[test]
    fn encodes_as_the_c_compiler() {
        // Bytes from the C compiler's output for env/B empty, env/A "hello",
        // exec "echo hi", in that readdir order.
        let d = Decision::Allow(Allow {
            env: vec![unset("B"), set("A", "hello")],
            exec: Some(b"echo hi".to_vec()),
        });
        assert_eq!(
            encode(&d).unwrap(),
            b"A\x00\nB\x00A=hello\x00\x00\x07echo hi"
        );
        assert_eq!(
            encode(&Decision::Allow(Allow::default())).unwrap(),
            b"A\0\0\0\0"
        );
        assert_eq!(encode(&Decision::Deny).unwrap(), b"D");
        assert_eq!(env_len(&[unset("B"), set("A", "hello")]), 10);
    }

    #[test]
    fn roundtrip() {
        let d = Decision::Allow(Allow {
            env: vec![set("X", "a\nb"), unset("Y"), set("Z", "")],
            exec: Some(b"foo\0bar\n".to_vec()),
        });
        let v = encode(&d).unwrap();
        assert_eq!(decode(&v).unwrap(), d);
        assert_eq!(decode_strict(&v).unwrap(), d);
    }

    #[test]
    fn too_long_for_16_bits() {
        let d = Decision::Allow(Allow {
            env: vec![],
            exec: Some(vec![b'x'; 70000]),
        });
        assert!(encode(&d).is_err());
    }

    #[test]
    fn lenient_like_the_c_reader() {
        // Each case was fed to the C s6-ipcserver-access -x.
        assert_eq!(decode(b"Djunk").unwrap(), Decision::Deny);
        let long = |envlen: usize, execlen: usize| {
            let mut v = vec![b'A'];
            v.extend_from_slice(&(envlen as u16).to_be_bytes());
            v.extend_from_slice(b"B=");
            v.resize(3 + envlen - 1, b'x');
            v.push(0);
            v.extend_from_slice(&(execlen as u16).to_be_bytes());
            v.resize(v.len() + execlen, b'y');
            decode(&v)
        };
        assert!(long(4096, 4096).is_ok());
        assert!(long(4097, 0).is_err());
        assert!(long(10, 4097).is_err());
        for bad in [
            &b""[..],
            b"A",
            b"A\0",
            b"A\0\0",
            b"A\0\0\0",
            b"A\0\0\0\0junk",
            b"X",
            b"A\0\x05B=1\0\0\0",
            b"A\0\x03B=1\0\0\0",
            b"A\0\0\0\x05ab",
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let env = |v: &[u8]| match decode(v).unwrap() {
            Decision::Allow(a) => a.env,
            Decision::Deny => panic!("deny"),
        };
        assert_eq!(
            env(b"A\0\x08B=1\0C\0D\0\0\0"),
            [set("B", "1"), unset("C"), unset("D")]
        );
        assert_eq!(env(b"A\0\x03B=1\0\0"), []);
        assert_eq!(env(b"A\0\x05C\0B=1\0\0"), [unset("C")]);
        assert_eq!(env(b"A\0\x04C\0\0D\0\0"), [unset("C")]);
        assert_eq!(env(b"A\0\x05C\0\0D\0\0\0"), [unset("C"), unset("D")]);
        assert_eq!(env(b"A\0\x03\0D\0\0\0"), [unset("D")]);
        assert_eq!(env(b"A\0\x02\0\0\0\0"), []);
        assert_eq!(env(b"A\0\x05=x\0C\0\0\0"), [set("", "x"), unset("C")]);
        assert_eq!(env(b"A\0\x06B=1=2\0\0\0"), [set("B", "1=2")]);
    }

    #[test]
    fn strict_like_fs_from_cdb() {
        for bad in [
            &b"Dxyz"[..],
            b"A\0\x03B=1\0\0",
            b"A\0\x08B=1\0C\0\0D\0\0\0",
            b"A\0\x02\0\0\0\0",
            b"X",
        ] {
            assert!(decode_strict(bad).is_err(), "{bad:?}");
        }
        assert_eq!(decode_strict(b"D").unwrap(), Decision::Deny);
    }

    #[test]
    fn every_prefix_is_an_error_not_a_panic() {
        let v = b"A\x00\nB\x00A=hello\x00\x00\x07echo hi";
        for n in 0..v.len() {
            assert!(decode(&v[..n]).is_err(), "prefix {n}");
            assert!(decode_strict(&v[..n]).is_err(), "prefix {n}");
        }
    }
}
