//! Atomic locks with pluggable stores.
#![warn(missing_docs)]

mod error;
mod notify;
mod store;
mod store_factory;

pub use async_trait::async_trait;
pub use error::{BoxError, LockError};
pub use notify::ReleaseHub;
pub use store::{Acquisition, Capabilities, LockStore, ReleaseFuture};
pub use store_factory::StoreFactory;
