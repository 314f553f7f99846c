//! lock-store-redis
