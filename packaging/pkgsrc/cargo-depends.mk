# Replaced by the output of `make print-cargo-depends` (one CARGO_CRATE_DEPENDS
# line per crate of Cargo.lock); regenerate whenever Cargo.lock changes.
