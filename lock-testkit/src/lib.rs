//! lock-testkit
