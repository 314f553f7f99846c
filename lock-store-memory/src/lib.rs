//! lock-store-memory
