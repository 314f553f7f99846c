//! The suite bites: it fails every deliberately broken store where it should, every case
//! is failed by at least one broken store (except the allow-listed ones that only check
//! lock-core itself), a correct store passes, and a maker whose instances do not share
//! state is reported as a wiring mistake.

use std::collections::BTreeSet;

use lock_testkit::broken::{Flaw, FlawedStore};
use lock_testkit::{CASES, Outcome, SuiteReport, WIRING_RULE, maker, run_suite};

async fn report(flaw: Flaw) -> SuiteReport {
    let store = FlawedStore::new(flaw);
    run_suite(maker(move || {
        let s = store.shared();
        async move { s }
    }))
    .await
}

/// The cases each flaw must fail, at least: the ones written to catch it.
fn must_fail(flaw: Flaw) -> &'static [&'static str] {
    match flaw {
        Flaw::Noop => &[
            "instances_of_one_case_share_state",
            "acquiring_lock_makes_it_locked",
            "creating_same_lock_twice_returns_same_lock",
            "acquire_returns_false_when_lock_is_not_acquired_in_time",
            "acquiring_lock_is_exclusive",
            "run_passes_result",
            "run_passes_result_from_a_future",
            "run_passes_panic",
            "restore_lock_from_another_instance",
            "force_release_releases_a_lock_held_by_another",
            "release_of_unheld_lock_is_not_owned",
            "contenders_are_served_fairly",
            "store_save_refuses_a_held_key",
        ],
        Flaw::DeleteIgnoresOwner => &[
            "cant_release_a_lock_that_is_not_acquired_by_you",
            "release_after_expiry_takeover_belongs_to_new_holder",
            "release_after_force_release_belongs_to_new_holder",
            "store_delete_by_another_owner_is_not_owned",
        ],
        Flaw::DeleteNeverFails => &[
            "cant_release_a_lock_that_is_not_acquired_by_you",
            "multiple_calls_to_release_behave_as_expected",
            "release_of_unheld_lock_is_not_owned",
            "store_delete_by_another_owner_is_not_owned",
        ],
        Flaw::DeleteIgnored => &[
            "run_passes_result",
            "run_passes_error",
            "run_is_exclusive",
            "errors_during_run_do_not_leave_the_lock_held",
            "dropped_acquire_leaves_no_orphan",
            "dropped_run_releases",
            "guard_releases_on_drop",
            "store_delete_by_the_holder_frees_the_key",
        ],
        Flaw::DeleteOwnExpiredOk => &["store_delete_of_own_expired_lock_is_not_owned"],
        Flaw::ForceDeleteOfFreeKeyErrors => &[
            "force_release_releases_a_lock_held_by_another",
            "store_force_delete_frees_any_holder",
        ],
        Flaw::ExistsIgnoresExpiry => &[
            "exists_returns_false_if_lock_is_expired",
            "store_exists_follows_the_ttl",
        ],
        Flaw::ExistsAlwaysTrue => &[
            "new_mutex_is_not_locked",
            "keys_are_independent",
            "store_delete_by_the_holder_frees_the_key",
        ],
        Flaw::ExistsCachesResult => &[
            "custom_ttl_is_used",
            "store_delete_by_the_holder_frees_the_key",
        ],
        Flaw::RacySave => &[
            "many_tasks_one_key_never_overlap",
            "run_is_exclusive_with_two_locks",
            "expired_lock_is_taken_over_by_exactly_one_contender",
        ],
        Flaw::ExpiredTakeoverRace => &["expired_lock_is_taken_over_by_exactly_one_contender"],
        Flaw::DeleteIsFireAndForget => &["store_cancelled_operations_do_not_undo_later_ones"],
        Flaw::CancelledSaveLeavesNoExpiry => {
            &["store_cancelled_save_leaves_no_lock_without_expiry"]
        }
        Flaw::NeverExpires => &[
            "exists_returns_false_if_lock_is_expired",
            "can_acquire_lock_after_it_expires",
            "can_acquire_with_another_instance_after_it_expires",
            "custom_ttl_is_used",
            "able_to_acquire_a_lock_that_is_expired",
            "extend_resets_the_ttl",
            "store_exists_follows_the_ttl",
        ],
        Flaw::TtlWholeSeconds => &["custom_ttl_is_used", "store_exists_follows_the_ttl"],
        Flaw::ZeroTtlNeverExpires => &["store_input_domain_is_rejected_or_handled"],
        Flaw::NoTtlExpiresImmediately => &[
            "no_ttl_never_expires",
            "store_save_without_ttl_never_expires",
        ],
        Flaw::PanicsOnHugeTtl => &["store_input_domain_is_rejected_or_handled"],
        Flaw::KeepsStaleOwner => &["release_after_expiry_takeover_belongs_to_new_holder"],
        Flaw::DeniedSaveRefreshesTtl => &["store_denied_save_keeps_the_holders_expiry"],
        Flaw::Reentrant => &["locks_are_not_reentrant"],
        Flaw::ExtendIgnored => &[
            "extend_resets_the_ttl",
            "extend_errors_if_not_acquired",
            "auto_extension_keeps_lock_and_signals_loss",
            "store_extend_is_measured_from_now",
        ],
        Flaw::ExtendIgnoresOwner => &[
            "extend_errors_if_not_acquired",
            "extend_of_expired_lock_is_not_owned",
            "store_extend_by_another_owner_is_not_owned",
        ],
        Flaw::ExtendUncheckedResult => &[
            "extend_errors_if_not_acquired",
            "store_extend_by_another_owner_is_not_owned",
        ],
        Flaw::ExtendFromOldExpiry => &["store_extend_is_measured_from_now"],
        Flaw::ExtendNeverShortens => &["store_extend_is_measured_from_now"],
        Flaw::ExtendRevivesExpired => &[
            "extend_of_expired_lock_is_not_owned",
            "store_extend_does_not_revive_an_expired_lock",
        ],
        Flaw::KeyCaseFolded | Flaw::KeyNormalized | Flaw::KeyTruncated => {
            &["store_keys_are_byte_exact"]
        }
        Flaw::KeyTrimmed => &[
            "long_and_non_ascii_keys",
            "store_keys_are_byte_exact",
            "odd_keys_are_data_not_patterns",
        ],
        Flaw::OwnerTruncated => &[
            "store_delete_by_another_owner_is_not_owned",
            "store_extend_by_another_owner_is_not_owned",
        ],
        Flaw::SilentNotification => &[
            "release_wakes_waiter_before_retry_delay",
            "delete_wakes_release_listeners",
            "force_delete_wakes_release_listeners",
        ],
        Flaw::ForceDeleteSilent => &["force_delete_wakes_release_listeners"],
        Flaw::ListenerOnFirstPoll => &["release_listener_is_registered_at_creation"],
        Flaw::SingleListenerPerKey => &[
            "delete_wakes_release_listeners",
            "force_delete_wakes_release_listeners",
        ],
        Flaw::NotifyBeforeRemove => &[
            "delete_wakes_release_listeners",
            "force_delete_wakes_release_listeners",
        ],
        Flaw::OwnerCaseInsensitive | Flaw::OwnerTruncatedAt64 => {
            &["store_owners_are_compared_in_full"]
        }
        Flaw::ExtendKeepsNoExpiry => &["store_extend_gives_a_lock_without_ttl_an_expiry"],
        Flaw::FencingResets | Flaw::FencingPerInstance | Flaw::FencingPerEntry => &[
            "fencing_tokens_strictly_increase",
            "store_fencing_tokens_increase_across_instances",
        ],
        Flaw::HolderTtlLies => &[
            "waiter_wakes_at_holder_expiry",
            "store_holder_expires_in_is_the_remaining_time",
        ],
        Flaw::HolderTtlFullTtl => &["store_holder_expires_in_is_the_remaining_time"],
        Flaw::PermitNoLimit => &[
            "semaphore_never_admits_more_than_its_permits",
            "semaphore_counts_permits_and_release_frees_one",
            "rw_writer_excludes_everyone_and_readers_share",
        ],
        Flaw::PermitWeightIgnored => &["rw_writer_excludes_everyone_and_readers_share"],
        Flaw::PermitNoReservation => &["rw_waiting_writer_is_not_starved_by_readers"],
        Flaw::PermitReservationNeverLapses => &["rw_abandoned_writer_reservation_lapses"],
        Flaw::PermitReleaseNeverFails | Flaw::PermitExtendIgnoresOwner => {
            &["permit_release_and_extend_are_owner_checked"]
        }
        Flaw::PermitExtendIgnored => &["permit_extend_keeps_the_holding"],
        Flaw::PermitNeverExpires => &["semaphore_expiry_frees_a_permit"],
        Flaw::PermitReentrant => &["permit_holdings_are_not_reentrant"],
        Flaw::PermitForceIgnored => &["permit_force_release_frees_every_holder"],
        Flaw::PermitSharesLockKeys => &["permit_keys_are_separate_from_lock_keys"],
        Flaw::PermitReleaseDeferred => &[
            "semaphore_counts_permits_and_release_frees_one",
            "permit_cancellation_leaves_nothing_behind",
        ],
        Flaw::PermitBadRequestsGranted => &["permit_bad_requests_are_invalid"],
        Flaw::PermitTokensReset => &["permit_fencing_tokens_increase"],
        Flaw::PermitExpiresEarly => &["permit_never_ends_before_the_holders_deadline"],
        Flaw::ExpiresEarly => &["store_lock_never_ends_before_the_holders_deadline"],
        Flaw::PermitExtendMovesAll
        | Flaw::PermitForceKeepsReservation
        | Flaw::PermitGrantKeepsReservation
        | Flaw::PermitWritersIgnoreReservations => {
            &["store_permit_reservations_and_extensions_follow_the_rules"]
        }
        Flaw::PermitNoInputChecks => &["permit_bad_requests_are_invalid"],
        _ => &[],
    }
}

/// Cases that check lock-core's own behaviour, which no store can break.
const CORE_ONLY: &[&str] = &["get_lock_owner"];

fn not_passed(report: &SuiteReport) -> Vec<String> {
    report
        .cases
        .iter()
        .filter(|c| !matches!(c.outcome, Outcome::Passed))
        .map(|c| format!("{}: {:?}", c.name, c.outcome))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_store_passes_every_case() {
    let report = report(Flaw::None).await;
    assert_eq!(report.cases.len(), CASES.len());
    let bad = not_passed(&report);
    assert!(bad.is_empty(), "the control store did not pass: {bad:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broken_store_fails_and_every_case_bites() {
    assert!(
        Flaw::ALL.len() >= 30,
        "only {} broken stores",
        Flaw::ALL.len()
    );
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
        if must_fail(flaw).is_empty() {
            problems.push(format!("{flaw:?} has no expected failures in must_fail"));
        }
        for expected in must_fail(flaw) {
            if failed.contains(expected) {
                caught.insert(*expected);
            } else {
                problems.push(format!("{flaw:?} passed {expected}"));
            }
        }
    }
    // Only the failures a flaw was written to cause count: under the load of forty suites
    // at once, timing cases may also fail by accident.
    for case in CASES {
        if !caught.contains(case.name) && !CORE_ONLY.contains(&case.name) {
            problems.push(format!("no broken store is expected to fail {}", case.name));
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
    let needing: Vec<_> = CASES
        .iter()
        .filter(|c| c.requires != lock_testkit::Needs::Nothing)
        .map(|c| c.name)
        .collect();
    assert_eq!(report.skipped(), needing);
}

/// A maker that builds unrelated stores (the wiring mistake) fails, and every case it
/// fails says why: the wiring rule, not a symptom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unshared_instances_are_reported_as_a_wiring_mistake() {
    let report = run_suite(maker(|| async { FlawedStore::new(Flaw::None) })).await;
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter_map(|c| match &c.outcome {
            Outcome::Failed(why) => Some((c.name, why.clone())),
            _ => None,
        })
        .collect();
    assert!(
        failed
            .iter()
            .any(|(name, _)| *name == "instances_of_one_case_share_state"),
        "the wiring case passed with unshared instances: {failed:#?}"
    );
    for (name, why) in &failed {
        assert!(
            why.starts_with(WIRING_RULE),
            "{name} failed without pointing at the wiring rule: {why}"
        );
    }
}

/// `clones` builds instances that share state: the crate example's pattern passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_share_state() {
    let report = run_suite(maker(lock_testkit::clones(FlawedStore::new(Flaw::None)))).await;
    let bad = not_passed(&report);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The model checker bites: stores with expiry and ownership flaws disagree with the
/// model under the paused clock; the control agrees.
#[test]
fn the_model_catches_broken_stores() {
    use lock_testkit::model::{ModelConfig, check_paused};
    let mut config = ModelConfig::paused();
    config.sequences = 200;
    config.seed = Some(11);
    let run =
        |flaw: Flaw| check_paused(move || std::sync::Arc::new(FlawedStore::new(flaw)), &config);
    let control = run(Flaw::None);
    assert!(control.is_ok(), "the control disagrees: {control:?}");
    for flaw in [
        Flaw::NeverExpires,
        Flaw::DeleteIgnoresOwner,
        Flaw::DeleteNeverFails,
        Flaw::ExtendRevivesExpired,
        Flaw::ExtendIgnoresOwner,
        Flaw::ExistsIgnoresExpiry,
        Flaw::KeepsStaleOwner,
        Flaw::TtlWholeSeconds,
    ] {
        let got = run(flaw);
        assert!(got.is_err(), "the model missed {flaw:?}: {got:?}");
        println!("{flaw:?}: {}", got.unwrap_err());
    }
}

/// The bad-input table bites: a store that panics on a huge TTL, or keeps a zero-TTL lock
/// forever, is reported; the control is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_table_catches_broken_stores() {
    use lock_testkit::bad_input::check_store;
    let control = check_store(std::sync::Arc::new(FlawedStore::new(Flaw::None)), "bad:").await;
    assert!(control.is_empty(), "{control:#?}");
    for flaw in [Flaw::PanicsOnHugeTtl, Flaw::ZeroTtlNeverExpires] {
        let problems = check_store(std::sync::Arc::new(FlawedStore::new(flaw)), "bad:").await;
        assert!(!problems.is_empty(), "{flaw:?} passed the bad-input table");
        println!("{flaw:?}: {problems:?}");
    }
}
