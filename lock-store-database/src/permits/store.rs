//! The [`PermitStore`] methods of [`DatabaseStore`]: check the input, run one
//! statement, read its answer.

use std::time::Duration;

use async_trait::async_trait;
use lock_core::{
    Acquisition, LockError, PermitRequest, PermitStore, PermitUsage, ReleaseFuture, validate,
};
use tokio::time::Instant;

use super::ops::{PermitOps, Write};
use crate::sql::render::Values;
use crate::store::{DatabaseStore, hold_ms, ttl_ms};

impl DatabaseStore {
    /// Create the permits table at build, as the lock table (`create` on), all before
    /// `deadline`. With `create` off nothing is checked: a store used only for locks
    /// keeps working without the permits table, and a missing one is a `Storage` error
    /// of the first permit operation. A lock table name that leaves no room for the
    /// permits table's skips it too: permit operations then answer `InvalidArgument`.
    pub(crate) async fn prepare_permit_table(
        &self,
        create: bool,
        deadline: Instant,
    ) -> Result<(), LockError> {
        let ops = self.ops().permits();
        if !create || ops.table().is_err() {
            return Ok(());
        }
        // As for the lock table: racing creates can fail although the table exists.
        match ops.create_table(deadline).await {
            Ok(()) => Ok(()),
            Err(create_error) if Instant::now() >= deadline => Err(create_error),
            Err(create_error) => ops.probe(deadline).await.map_err(|_| create_error),
        }
    }

    /// The permit operations, if this store can have permits.
    fn permit_ops(&self) -> Result<&dyn PermitOps, LockError> {
        let ops = self.ops().permits();
        ops.table()?;
        Ok(ops)
    }
}

/// The values of a call on `key` by `owner`.
fn values(key: &str, owner: &str) -> Values {
    Values {
        owner: owner.to_owned(),
        ..key_values(key)
    }
}

/// The values of a call on `key` alone.
fn key_values(key: &str) -> Values {
    Values {
        key: key.as_bytes().to_vec(),
        ..Values::default()
    }
}

fn count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[async_trait]
impl PermitStore for DatabaseStore {
    async fn try_acquire_permit(
        &self,
        key: &str,
        owner: &str,
        request: PermitRequest,
    ) -> Result<Acquisition, LockError> {
        request.validate()?;
        validate::save_input(key, owner, request.ttl)?;
        let ops = self.permit_ops()?;
        let values = Values {
            weight: i64::from(request.weight),
            limit: i64::from(request.limit),
            ttl: request.ttl.map(hold_ms),
            reserve: request.reserve.map(ttl_ms),
            ..values(key, owner)
        };
        self.acquisition(ops.acquire(self.deadline(), values).await)
    }

    async fn release_permit(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let ops = self.permit_ops()?;
        let values = values(key, owner);
        self.owned(ops.write(self.deadline(), Write::Release, values).await)?;
        ops.released_locally(key);
        Ok(())
    }

    async fn extend_permit(
        &self,
        key: &str,
        owner: &str,
        duration: Duration,
    ) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let ops = self.permit_ops()?;
        let values = Values {
            ms: hold_ms(duration),
            ..values(key, owner)
        };
        self.owned(ops.write(self.deadline(), Write::Extend, values).await)
    }

    async fn force_release_permits(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let ops = self.permit_ops()?;
        let values = key_values(key);
        let released = ops
            .write(self.deadline(), Write::ForceRelease, values)
            .await;
        if self.changed(released)? > 0 {
            ops.released_locally(key);
        }
        Ok(())
    }

    async fn permit_usage(&self, key: &str) -> Result<PermitUsage, LockError> {
        validate::key(key)?;
        let ops = self.permit_ops()?;
        let row = ops.usage(self.deadline(), key_values(key)).await;
        let row = row.map_err(|e| self.context(e))?;
        Ok(PermitUsage::new(count(row.holders), count(row.used)))
    }

    fn permit_release_listener(&self, key: &str) -> Option<ReleaseFuture> {
        self.ops().permits().listen(key)
    }
}
