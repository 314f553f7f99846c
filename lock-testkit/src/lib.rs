//! The conformance suite every lock store runs — ours and yours — and the
//! benchmark harness.
//!
//! # Validate a store
//!
//! One line in a test file expands into one `#[test]` per conformance case:
//!
//! ```ignore
//! // An in-process store: build it once, hand out clones (see "Wiring").
//! lock_testkit::store_tests!(memory,
//!     capabilities: [release_notification, fencing_tokens, holder_ttl, permits],
//!     lock_testkit::clones(lock_store_memory::MemoryStore::new()));
//!
//! // A store behind a server: every instance connects to the same server. Return
//! // `Err(Skip)` when it is unreachable; the test then prints
//! // `skipped: <test> — redis unreachable at <url>: <cause>` (or fails when
//! // LOCK_REQUIRE_SERVICES=1).
//! lock_testkit::store_tests!(redis,
//!     capabilities: [release_notification, fencing_tokens, holder_ttl, permits],
//!     service: || async {
//!         let url = lock_testkit::services::redis_url();
//!         connect_redis(&url).await.map_err(|e| {
//!             lock_testkit::Skip::unreachable("redis", &url, lock_testkit::services::root_cause(&e))
//!         })
//!     });
//! ```
//!
//! Custom harnesses call [`run_suite`] (a report per case) or the case functions in
//! [`cases`] directly:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
//! use lock_testkit::{clones, maker, run_suite};
//! let report = run_suite(maker(clones(lock_store_memory::MemoryStore::new()))).await;
//! assert!(report.failed().is_empty(), "{:?}", report.failed());
//! # }
//! ```
//!
//! # Wiring
//!
//! The constructor given to [`store_tests!`] is called once per case and again whenever
//! a case needs a second instance of the store, as a second process would have. **All
//! instances built for one case must share their locks** — a lock saved through one is
//! held for the other:
//!
//! * an in-process store (like `MemoryStore`): build it once and hand out clones,
//!   [`clones`]`(MyStore::new())` — not `|| async { MyStore::new() }`, which builds
//!   unrelated stores;
//! * a store behind a server, a directory or a database: connect every instance to the
//!   same one.
//!
//! Every case that uses a second instance checks this first, and the case
//! `instances_of_one_case_share_state` checks it on its own; a breach fails with a message
//! that starts with `wiring:` ([`WIRING_RULE`]).
//!
//! # Capabilities
//!
//! Some cases only apply to stores with an optional capability
//! ([`lock_core::Capabilities`]). List the store's capabilities in the macro
//! (`capabilities: [release_notification, fencing_tokens, holder_ttl, permits]`, any
//! subset, in that order or another): the cases of a capability that is not listed are emitted as
//! `#[ignore = "store lacks …"]`, so `cargo test` reports them as *ignored*, with the
//! reason, not as passed. A generated test `capabilities_match_store_tests_list` fails
//! when the list and the store's [`LockStore::capabilities`](lock_core::LockStore::capabilities)
//! disagree, so the list cannot hide a case that applies.
//!
//! Without the list, a capability case that does not apply prints
//! `skipped: <test> — store lacks capability …` to standard error (past the output
//! capture) and the harness counts it as passed; [`run_suite`] always reports it as
//! [`Outcome::Skipped`].
//!
//! # What the suite holds
//!
//! The cases in [`cases`] check every rule of the store contract, as the documentation of
//! each [`LockStore`](lock_core::LockStore) method states it, both through [`lock_core::Lock`]
//! and by calling the trait methods directly (the `store_*` cases), so that a failure names
//! the method that broke the rule. Every case is proven to bite: the meta-tests of this
//! crate run the suite against deliberately broken stores ([`broken`]) and check that each
//! one fails.
//!
//! Beyond the cases:
//! * [`model`]: random sequences of operations compared step by step with a reference
//!   model of the contract; one line with [`model_tests!`];
//! * [`bad_input`]: the table of out-of-domain input a store may receive (and may
//!   reject), also run by the case `store_input_domain_is_rejected_or_handled`.
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bad_input;
pub mod bench;
pub mod broken;
pub mod cases;
mod harness;
pub mod model;
pub mod services;
pub mod wrap;

pub use harness::{
    CASE_TIMEOUT, CaseFailure, CaseReport, CaseResult, Ctx, Outcome, StoreMaker, SuiteReport,
    WIRING_RULE, clones, maker, ok, run_case, run_suite, service_maker, within,
};
pub use services::Skip;

#[doc(hidden)]
pub use harness::private;

use std::future::Future;
use std::pin::Pin;

use lock_core::Capabilities;

/// A capability a case needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Needs {
    /// Nothing beyond the five required methods.
    Nothing,
    /// [`Capabilities::release_notification`].
    ReleaseNotification,
    /// [`Capabilities::fencing_tokens`].
    FencingTokens,
    /// [`Capabilities::holder_ttl`].
    HolderTtl,
    /// Semaphores and reader-writer locks: [`LockStore::permits`](lock_core::LockStore::permits).
    Permits,
}

impl Needs {
    /// The capability's name if `store` lacks it.
    pub fn missing_in(self, store: &dyn lock_core::LockStore) -> Option<&'static str> {
        match self {
            Needs::Permits if store.permits().is_none() => Some("permits"),
            Needs::Permits => None,
            other => other.missing_from(&store.capabilities()),
        }
    }

    /// The capability's name if `caps` lacks it (for [`Needs::Permits`], which is not a
    /// flag of [`Capabilities`], see [`missing_in`](Self::missing_in): `None` here).
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
#[non_exhaustive]
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
            instances_of_one_case_share_state Nothing,
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
            store_save_refuses_a_held_key Nothing,
            store_denied_save_keeps_the_holders_expiry Nothing,
            store_delete_by_the_holder_frees_the_key Nothing,
            store_delete_by_another_owner_is_not_owned Nothing,
            store_delete_of_own_expired_lock_is_not_owned Nothing,
            store_force_delete_frees_any_holder Nothing,
            store_exists_follows_the_ttl Nothing,
            store_save_without_ttl_never_expires Nothing,
            store_extend_is_measured_from_now Nothing,
            store_extend_does_not_revive_an_expired_lock Nothing,
            store_extend_by_another_owner_is_not_owned Nothing,
            store_owners_are_compared_in_full Nothing,
            store_extend_gives_a_lock_without_ttl_an_expiry Nothing,
            expired_lock_is_taken_over_by_exactly_one_contender Nothing,
            store_cancelled_save_leaves_no_lock_without_expiry Nothing,
            store_cancelled_operations_do_not_undo_later_ones Nothing,
            store_keys_are_byte_exact Nothing,
            store_input_domain_is_rejected_or_handled Nothing,
            odd_keys_are_data_not_patterns Nothing,
            store_lock_never_ends_before_the_holders_deadline Nothing,
            release_wakes_waiter_before_retry_delay ReleaseNotification,
            delete_wakes_release_listeners ReleaseNotification,
            force_delete_wakes_release_listeners ReleaseNotification,
            release_listener_is_registered_at_creation ReleaseNotification,
            fencing_tokens_strictly_increase FencingTokens,
            store_fencing_tokens_increase_across_instances FencingTokens,
            waiter_wakes_at_holder_expiry HolderTtl,
            store_holder_expires_in_is_the_remaining_time HolderTtl,
            semaphore_never_admits_more_than_its_permits Permits,
            semaphore_counts_permits_and_release_frees_one Permits,
            semaphore_expiry_frees_a_permit Permits,
            permit_release_and_extend_are_owner_checked Permits,
            permit_holdings_are_not_reentrant Permits,
            permit_extend_keeps_the_holding Permits,
            permit_force_release_frees_every_holder Permits,
            permit_keys_are_separate_from_lock_keys Permits,
            rw_writer_excludes_everyone_and_readers_share Permits,
            rw_waiting_writer_is_not_starved_by_readers Permits,
            rw_abandoned_writer_reservation_lapses Permits,
            permit_cancellation_leaves_nothing_behind Permits,
            permit_bad_requests_are_invalid Permits,
            permit_fencing_tokens_increase Permits,
            permit_never_ends_before_the_holders_deadline Permits,
            store_permit_reservations_and_extensions_follow_the_rules Permits,
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
                $crate::private::run_test(stringify!($case), $crate::$maker($ctor), None);
            }
        )*
    };
    ({ $maker:ident, $ctor:expr, $caps:tt } $($case:ident $needs:ident),* $(,)?) => {
        $(
            $crate::__listed_case! { $needs $caps $caps $case $maker $ctor }
        )*

        #[test]
        fn capabilities_match_store_tests_list() {
            $crate::private::check_listed_capabilities(
                $crate::$maker($ctor),
                &$crate::__cap_names!($caps),
            );
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __cap_names {
    ([$($cap:ident)*]) => { [$(stringify!($cap)),*] };
}

/// One case of the `capabilities:` form: a plain `#[test]` when the case needs nothing or
/// a listed capability, an ignored one otherwise.
#[doc(hidden)]
#[macro_export]
macro_rules! __listed_case {
    (Nothing $all:tt $caps:tt $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { @run $all $case $maker $ctor }
    };
    (ReleaseNotification $all:tt [release_notification $($rest:ident)*] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { @run $all $case $maker $ctor }
    };
    (FencingTokens $all:tt [fencing_tokens $($rest:ident)*] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { @run $all $case $maker $ctor }
    };
    (HolderTtl $all:tt [holder_ttl $($rest:ident)*] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { @run $all $case $maker $ctor }
    };
    (Permits $all:tt [permits $($rest:ident)*] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { @run $all $case $maker $ctor }
    };
    (Permits $all:tt [] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! {
            @lacks "store lacks permits (not in the store_tests! capabilities list)" $all $case $maker $ctor
        }
    };
    (ReleaseNotification $all:tt [] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! {
            @lacks "store lacks release_notification (not in the store_tests! capabilities list)" $all $case $maker $ctor
        }
    };
    (FencingTokens $all:tt [] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! {
            @lacks "store lacks fencing_tokens (not in the store_tests! capabilities list)" $all $case $maker $ctor
        }
    };
    (HolderTtl $all:tt [] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! {
            @lacks "store lacks holder_ttl (not in the store_tests! capabilities list)" $all $case $maker $ctor
        }
    };
    ($needs:ident $all:tt [$first:ident $($rest:ident)*] $case:ident $maker:ident $ctor:expr) => {
        $crate::__listed_case! { $needs $all [$($rest)*] $case $maker $ctor }
    };
    (@run $all:tt $case:ident $maker:ident $ctor:expr) => {
        #[test]
        fn $case() {
            $crate::private::run_test(stringify!($case), $crate::$maker($ctor), Some(&$crate::__cap_names!($all)[..]));
        }
    };
    (@lacks $why:literal $all:tt $case:ident $maker:ident $ctor:expr) => {
        #[test]
        #[ignore = $why]
        fn $case() {
            $crate::private::run_test(stringify!($case), $crate::$maker($ctor), Some(&$crate::__cap_names!($all)[..]));
        }
    };
}

/// Expand into a module `$name` with one `#[test]` per conformance case, each on its
/// own multi-threaded tokio runtime.
///
/// * `store_tests!(name, ctor)` — `ctor` is a constructor that always succeeds, a
///   closure returning a future of the store, e.g. [`clones`]`(store)`;
/// * `store_tests!(name, service: ctor)` — a store behind a server: `ctor`'s future
///   returns `Ok(store)` or `Err(`[`Skip`]`)`, which prints `skipped: …` and passes, or
///   fails when `LOCK_REQUIRE_SERVICES=1`;
/// * either form after `capabilities: [..]` (a subset of `release_notification`,
///   `fencing_tokens`, `holder_ttl`, `permits` — semaphores and reader-writer locks through
///   [`LockStore::permits`](lock_core::LockStore::permits)): the cases of unlisted
///   capabilities are reported as
///   ignored (see the crate docs, "Capabilities").
///
/// The constructor is called for every case, and again where a case needs a second
/// instance of the store (as another process would have): all instances built for one
/// case must share their locks (see the crate docs, "Wiring").
#[macro_export]
macro_rules! store_tests {
    ($name:ident, capabilities: [$($cap:ident),* $(,)?], service: $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__with_cases!(__store_tests_body {
                service_maker,
                $ctor,
                [$($cap)*]
            });
        }
    };
    ($name:ident, capabilities: [$($cap:ident),* $(,)?], $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::__with_cases!(__store_tests_body { maker, $ctor, [$($cap)*] });
        }
    };
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

/// Expand into a module `$name` with a `#[test]` that checks the store against the
/// reference model of the contract ([`model`]): random sequences of operations by
/// several owners, compared step by step.
///
/// * `model_tests!(name, ctor)` / `model_tests!(name, service: ctor)` — real time
///   ([`model::ModelConfig::real`]), any store; the constructor as in [`store_tests!`];
/// * `model_tests!(name, paused: || Arc::new(store) as Arc<dyn LockStore>)` — tokio's
///   paused clock ([`model::ModelConfig::paused`]), a fresh store per sequence, for
///   stores that read tokio's clock.
#[macro_export]
macro_rules! model_tests {
    ($name:ident, paused: $make:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn matches_the_model_under_a_paused_clock() {
                $crate::private::model_paused(stringify!($name), $make);
            }
        }
    };
    ($name:ident, service: $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn matches_the_model_in_real_time() {
                $crate::private::model_real(stringify!($name), $crate::service_maker($ctor));
            }
        }
    };
    ($name:ident, $ctor:expr $(,)?) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn matches_the_model_in_real_time() {
                $crate::private::model_real(stringify!($name), $crate::maker($ctor));
            }
        }
    };
}
