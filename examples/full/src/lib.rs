//! Nothing of its own: depending on `examples` with the `full` feature makes every
//! workspace-wide command (`cargo test --workspace`) build all of that package's
//! examples, tests and binaries (see `Cargo.toml`).
