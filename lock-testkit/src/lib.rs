//! The conformance suite every lock store runs — ours and yours — and the
//! benchmark harness.
//!
//! # Validate a store
//!
//! One line in a test file expands into one `#[test]` per conformance case:
//!
//! ```ignore
//! lock_testkit::store_tests!(memory, || async { lock_store_memory::MemoryStore::new() });
//!
//! // A store behind a server: return `Err(Skip)` when it is unreachable; the test then
//! // prints `skipped: …` (or fails when LOCK_REQUIRE_SERVICES=1).
//! lock_testkit::store_tests!(redis, service: || async {
//!     connect_redis().await.map_err(lock_testkit::Skip::new)
//! });
//! ```
//!
//! Custom harnesses call [`run_suite`] (a report per case) or the case functions in
//! [`cases`] directly.
//!
//! Every case is proven to bite: the meta-tests of this crate run the suite against
//! deliberately broken stores ([`broken`]) and check that each one fails.
#![warn(missing_docs)]

pub mod bench;
pub mod broken;
pub mod cases;
mod harness;
pub mod services;
pub mod wrap;

pub use harness::{
    CASE_TIMEOUT, CaseFailure, CaseReport, CaseResult, Ctx, Outcome, StoreMaker, SuiteReport,
    maker, ok, run_case, run_suite, service_maker, within,
};
pub use services::Skip;

#[doc(hidden)]
pub use harness::private;

use std::future::Future;
use std::pin::Pin;

use lock_core::Capabilities;

/// A capability a case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Nothing beyond the five required methods.
    Nothing,
    /// [`Capabilities::release_notification`].
    ReleaseNotification,
    /// [`Capabilities::fencing_tokens`].
    FencingTokens,
    /// [`Capabilities::holder_ttl`].
    HolderTtl,
}

impl Needs {
    /// The capability's name if `caps` lacks it.
    pub fn missing_from(self, caps: &Capabilities) -> Option<&'static str> {
        match self {
            Needs::Nothing => None,
            Needs::ReleaseNotification if !caps.release_notification => {
                Some("release_notification")
            }
            Needs::FencingTokens if !caps.fencing_tokens => Some("fencing_tokens"),
            Needs::HolderTtl if !caps.holder_ttl => Some("holder_ttl"),
            _ => None,
        }
    }
}

/// The future a case returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = CaseResult> + Send>>;

/// A conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Its name (the name of its function in [`cases`]).
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Ctx) -> CaseFuture,
    /// The capability it needs.
    pub requires: Needs,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("requires", &self.requires)
            .finish()
    }
}

/// Calls `$callback! { {$args} case_name Needs, … }` with every case: the single list
/// both [`CASES`] and [`store_tests!`] are generated from.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_cases {
    ($callback:ident { $($args:tt)* }) => {
        $crate::$callback! { { $($args)* }
            acquiring_lock_is_exclusive Nothing,
            new_mutex_is_not_locked Nothing,
            acquiring_lock_makes_it_locked Nothing,
            creating_same_lock_twice_returns_same_lock Nothing,
            cant_release_a_lock_that_is_not_acquired_by_you Nothing,
            acquire_returns_false_when_lock_is_not_acquired_in_time Nothing,
            run_passes_result Nothing,
            run_passes_result_from_a_future Nothing,
            run_passes_error Nothing,
            run_passes_panic Nothing,
            run_is_exclusive Nothing,
            run_is_exclusive_with_two_locks Nothing,
            errors_during_run_do_not_leave_the_lock_held Nothing,
            multiple_calls_to_release_behave_as_expected Nothing,
            get_lock_owner Nothing,
            restore_lock_from_another_instance Nothing,
            exists_returns_false_if_lock_is_expired Nothing,
            can_acquire_lock_after_it_expires Nothing,
            can_acquire_with_another_instance_after_it_expires Nothing,
            custom_ttl_is_used Nothing,
            able_to_acquire_a_lock_that_is_expired Nothing,
            no_ttl_never_expires Nothing,
            force_release_releases_a_lock_held_by_another Nothing,
            extend_resets_the_ttl Nothing,
            extend_errors_if_not_acquired Nothing,
            release_after_expiry_takeover_belongs_to_new_holder Nothing,
            release_after_force_release_belongs_to_new_holder Nothing,
            release_of_unheld_lock_is_not_owned Nothing,
            extend_of_expired_lock_is_not_owned Nothing,
            locks_are_not_reentrant Nothing,
            many_tasks_one_key_never_overlap Nothing,
            keys_are_independent Nothing,
            long_and_non_ascii_keys Nothing,
            dropped_acquire_leaves_no_orphan Nothing,
            dropped_run_releases Nothing,
            guard_releases_on_drop Nothing,
            auto_extension_keeps_lock_and_signals_loss Nothing,
            contenders_are_served_fairly Nothing,
            release_wakes_waiter_before_retry_delay ReleaseNotification,
            fencing_tokens_strictly_increase FencingTokens,
            waiter_wakes_at_holder_expiry HolderTtl,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_table {
    ({} $($case:ident $needs:ident),* $(,)?) => {
        /// Every conformance case, in order.
        pub static CASES: &[Case] = &[
            $(Case {
                name: stringify!($case),
                run: |ctx| Box::pin(async move { $crate::cases::$case(&ctx).await }),
                requires: Needs::$needs,
            }),*
        ];
    };
}

__with_cases!(__case_table {});

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests_body {
    ({ $maker:ident, $ctor:expr } $($case:ident $needs:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::private::run_test(stringify!($case), $crate::$maker($ctor));
            }
        )*
    };
}

/// Expand into a module `$name` with one `#[test]` per conformance case, each on its
/// own multi-threaded tokio runtime.
///
/// * `store_tests!(name, || async { store })` — a constructor that always succeeds;
/// * `store_tests!(name, service: || async { Ok(store) /* or Err(Skip) */ })` — a store
///   behind a server: `Err(`[`Skip`]`)` prints `skipped: …` and passes, or fails when
///   `LOCK_REQUIRE_SERVICES=1`.
///
/// The constructor is called for every case, and again where a case needs a second
/// instance of the store (as another process would have).
#[macro_export]
macro_rules! store_tests {
    ($name:ident, service: $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__with_cases!(__store_tests_body {
                service_maker,
                $ctor
            });
        }
    };
    ($name:ident, $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__with_cases!(__store_tests_body { maker, $ctor });
        }
    };
}
