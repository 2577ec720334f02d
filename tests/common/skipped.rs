//! Skipped tests are recorded, not only told: cargo's capture hides what a
//! passing test prints, so a skip said on stderr alone reads as a pass.
//! Each skip appends a line to the file named by `S6IPC_SKIPPED` (ci/test
//! sets it and prints the list at the end). Shared by tests/common and
//! platform/tests/common.

use std::io::Write;

/// Says on stderr that `test` is skipped and why, and appends
/// `CRATE::TEST: REASON` to the file named by `S6IPC_SKIPPED`, if set.
pub fn record_skip(test: &str, reason: &str) {
    eprintln!("skipped: {test}: {reason}");
    let Some(file) = std::env::var_os("S6IPC_SKIPPED") else {
        return;
    };
    let line = format!("{}::{test}: {reason}\n", env!("CARGO_CRATE_NAME"));
    // One short write to a file opened for appending: lines from tests
    // that skip at the same moment do not interleave.
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        panic!("record the skip of {test} in {file:?}: {e}");
    }
}
