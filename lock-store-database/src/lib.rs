//! lock-store-database
