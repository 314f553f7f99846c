//! The suite bites: it fails every deliberately broken store where it should, and every
//! case is failed by at least one broken store (except the allow-listed ones that only
//! check lock-core itself).

use std::collections::BTreeSet;

use lock_testkit::broken::{Flaw, FlawedStore};
use lock_testkit::{CASES, SuiteReport, maker, run_suite};

async fn report(flaw: Flaw) -> SuiteReport {
    let store = FlawedStore::new(flaw);
    run_suite(maker(move || {
        let s = store.shared();
        async move { s }
    }))
    .await
}

/// The cases each flaw must fail, at least.
fn must_fail(flaw: Flaw) -> &'static [&'static str] {
    match flaw {
        Flaw::None => &[],
        Flaw::Noop => &[
            "acquiring_lock_makes_it_locked",
            "acquiring_lock_is_exclusive",
            "run_passes_result",
            "run_passes_panic",
            "restore_lock_from_another_instance",
            "force_release_releases_a_lock_held_by_another",
            "release_of_unheld_lock_is_not_owned",
        ],
        Flaw::DeleteIgnoresOwner => &[
            "cant_release_a_lock_that_is_not_acquired_by_you",
            "release_after_expiry_takeover_belongs_to_new_holder",
            "release_after_force_release_belongs_to_new_holder",
        ],
        Flaw::DeleteNeverFails => &[
            "cant_release_a_lock_that_is_not_acquired_by_you",
            "multiple_calls_to_release_behave_as_expected",
            "release_of_unheld_lock_is_not_owned",
        ],
        Flaw::DeleteIgnored => &[
            "run_passes_result",
            "errors_during_run_do_not_leave_the_lock_held",
            "dropped_acquire_leaves_no_orphan",
            "dropped_run_releases",
            "guard_releases_on_drop",
        ],
        Flaw::NeverExpires => &[
            "exists_returns_false_if_lock_is_expired",
            "can_acquire_lock_after_it_expires",
            "can_acquire_with_another_instance_after_it_expires",
            "custom_ttl_is_used",
            "able_to_acquire_a_lock_that_is_expired",
            "extend_resets_the_ttl",
        ],
        Flaw::KeepsStaleOwner => &["release_after_expiry_takeover_belongs_to_new_holder"],
        Flaw::Reentrant => &["locks_are_not_reentrant"],
        Flaw::ExtendIgnored => &[
            "extend_resets_the_ttl",
            "extend_errors_if_not_acquired",
            "auto_extension_keeps_lock_and_signals_loss",
        ],
        Flaw::ExtendIgnoresOwner => &[
            "extend_errors_if_not_acquired",
            "extend_of_expired_lock_is_not_owned",
            "auto_extension_keeps_lock_and_signals_loss",
        ],
        Flaw::ExistsIgnoresExpiry => &["exists_returns_false_if_lock_is_expired"],
        Flaw::ExistsAlwaysTrue => &["new_mutex_is_not_locked", "keys_are_independent"],
        Flaw::RacySave => &[
            "many_tasks_one_key_never_overlap",
            "run_is_exclusive_with_two_locks",
        ],
        Flaw::SilentNotification => &["release_wakes_waiter_before_retry_delay"],
        Flaw::FencingResets => &["fencing_tokens_strictly_increase"],
        Flaw::HolderTtlLies => &["waiter_wakes_at_holder_expiry"],
    }
}

/// Cases that check lock-core's own behaviour, which no store can break.
const CORE_ONLY: &[&str] = &["get_lock_owner"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_store_passes_every_case() {
    let report = report(Flaw::None).await;
    assert_eq!(report.cases.len(), CASES.len());
    assert!(
        report.failed().is_empty(),
        "the control store failed: {:#?}",
        report
            .cases
            .iter()
            .filter(|c| !matches!(c.outcome, lock_testkit::Outcome::Passed))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broken_store_fails_and_every_case_bites() {
    let runs: Vec<_> = Flaw::ALL
        .iter()
        .map(|&flaw| tokio::spawn(async move { (flaw, report(flaw).await) }))
        .collect();
    let mut caught = BTreeSet::new();
    let mut problems = Vec::new();
    for run in runs {
        let (flaw, report) = run.await.expect("suite task");
        let failed = report.failed();
        println!("{flaw:?} fails {} cases: {failed:?}", failed.len());
        for expected in must_fail(flaw) {
            if !failed.contains(expected) {
                problems.push(format!("{flaw:?} passed {expected}"));
            }
        }
        caught.extend(failed);
    }
    for case in CASES {
        if !caught.contains(case.name) && !CORE_ONLY.contains(&case.name) {
            problems.push(format!("no broken store fails {}", case.name));
        }
    }
    assert!(
        problems.is_empty(),
        "the suite does not bite: {problems:#?}"
    );
}

/// The polling view of a correct store still passes every case that needs no
/// capability, and the capability cases are skipped for it, not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_only_view_passes_without_capabilities() {
    let store = std::sync::Arc::new(FlawedStore::new(Flaw::None));
    let report = run_suite(maker(move || {
        let s = lock_testkit::wrap::PollingOnly(store.clone());
        async move { s }
    }))
    .await;
    assert!(report.failed().is_empty(), "{:?}", report.failed());
    assert_eq!(report.skipped().len(), 3, "{:?}", report.skipped());
}
