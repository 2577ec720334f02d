//! The numbers on command lines and in the environment, read as the C
//! programs read them: plain unsigned decimal, octal modes, gid lists.

/// Plain unsigned decimal: no sign, no prefix, not empty, in range.
pub fn decimal(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Octal `0000` to `0777`.
pub fn perms(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 4 || !s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        return None;
    }
    let v = u32::from_str_radix(std::str::from_utf8(s).ok()?, 8).ok()?;
    (v <= 0o777).then_some(v)
}

/// A comma-separated list of decimal gids, at most `max` of them. The empty
/// string is the empty list.
pub fn gidlist(s: &[u8], max: usize) -> Option<Vec<libc::gid_t>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let list: Option<Vec<_>> = s.split(|&c| c == b',').map(decimal).collect();
    list.filter(|l| l.len() <= max)
}
