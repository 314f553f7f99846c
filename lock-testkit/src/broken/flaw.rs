//! The flaws a [`FlawedStore`](super::FlawedStore) can have: one realistic bug each.

macro_rules! flaws {
    ($( $(#[doc = $doc:literal])* $flaw:ident, )*) => {
        /// What is wrong with a [`FlawedStore`](super::FlawedStore).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Flaw {
            /// Nothing: the control.
            None,
            $( $(#[doc = $doc])* $flaw, )*
        }

        impl Flaw {
            /// Every flaw except [`Flaw::None`].
            pub const ALL: &'static [Flaw] = &[ $(Flaw::$flaw),* ];
        }
    };
}

flaws! {
    // ---- the seed and whole methods wrong ----
    /// The seed's no-op store: `save` always `false`, everything else succeeds.
    Noop,
    /// `delete` removes the lock whoever holds it.
    DeleteIgnoresOwner,
    /// `delete` of a lock not held by the owner silently succeeds.
    DeleteNeverFails,
    /// `delete` answers `Ok` and removes nothing.
    DeleteIgnored,
    /// `delete` of one's own *expired* lock removes it and answers `Ok`
    /// (`DELETE … WHERE key = ? AND owner = ?`, without the expiry condition).
    DeleteOwnExpiredOk,
    /// `force_delete` of a free key is `NotOwned` ("0 rows affected" taken as an error).
    ForceDeleteOfFreeKeyErrors,
    /// Locks expire 2 ms before their TTL (a clock cut to the millisecond, compared
    /// with `expiry <= now`).
    ExpiresEarly,
    /// `exists` ignores expiry.
    ExistsIgnoresExpiry,
    /// `exists` says every key is held.
    ExistsAlwaysTrue,
    /// `exists` answers from a per-instance cache for a second.
    ExistsCachesResult,
    // ---- race windows ----
    /// `save` checks, yields, then writes: two savers can both win.
    RacySave,
    /// Free keys are created atomically, but taking over an *expired* lock reads it,
    /// yields, then overwrites (a file store's check-then-write): several contenders can
    /// take over one expired lock at once.
    ExpiredTakeoverRace,
    /// `delete` checks the owner, then removes the key in a detached task after a back-off
    /// (fire-and-forget): the removal can land on the next holder's lock.
    DeleteIsFireAndForget,
    // ---- cancellation ----
    /// `save` writes the lock without expiry, then sets the expiry after an await: a
    /// dropped save leaves a lock that never expires.
    CancelledSaveLeavesNoExpiry,
    // ---- clock mistakes ----
    /// TTLs are ignored: nothing expires.
    NeverExpires,
    /// TTLs are truncated to whole seconds (`EXPIRE` with `as_secs()`).
    TtlWholeSeconds,
    /// A zero TTL is taken as "no TTL" (`ttl.filter(|t| !t.is_zero())`).
    ZeroTtlNeverExpires,
    /// `ttl: None` is taken as a zero TTL (`ttl.unwrap_or_default()`).
    NoTtlExpiresImmediately,
    /// No input validation, and `now + ttl` overflows (panics) on a huge TTL.
    PanicsOnHugeTtl,
    // ---- expiry edge cases ----
    /// A takeover of an expired lock keeps the previous owner recorded.
    KeepsStaleOwner,
    /// A denied `save` still writes its TTL over the holder's (an upsert that updates
    /// the expiry even when it keeps the owner).
    DeniedSaveRefreshesTtl,
    /// `save` by the current holder succeeds again.
    Reentrant,
    /// `extend` succeeds without changing the expiry.
    ExtendIgnored,
    /// `extend` succeeds for any owner, held or not.
    ExtendIgnoresOwner,
    /// `extend` answers `Ok` even when it changed nothing (result not checked).
    ExtendUncheckedResult,
    /// `extend` adds the duration to the old expiry instead of to now.
    ExtendFromOldExpiry,
    /// `extend` never shortens: it keeps the later of the old and the new expiry.
    ExtendNeverShortens,
    /// `extend` checks the owner but not the expiry: it revives an expired lock.
    ExtendRevivesExpired,
    /// `extend` of a lock saved without TTL answers `Ok` and leaves it without expiry.
    ExtendKeepsNoExpiry,
    // ---- keys and owners ----
    /// Keys are case-folded.
    KeyCaseFolded,
    /// Keys are trimmed of surrounding whitespace.
    KeyTrimmed,
    /// Keys are Unicode-normalized (a decomposed `é` becomes the composed one).
    KeyNormalized,
    /// Keys are truncated to 255 bytes (a `VARCHAR(255)` column in non-strict mode).
    KeyTruncated,
    /// Owners are compared on their first 16 characters only.
    OwnerTruncated,
    /// Owners are compared ignoring letter case (a `_ci` collation).
    OwnerCaseInsensitive,
    /// Owners are stored and compared on their first 64 characters (a `VARCHAR(64)`).
    OwnerTruncatedAt64,
    // ---- capabilities ----
    /// Claims release notification but never notifies.
    SilentNotification,
    /// Notifies on `delete` but not on `force_delete`.
    ForceDeleteSilent,
    /// The release listener registers on its first poll instead of on creation.
    ListenerOnFirstPoll,
    /// Only the newest listener of a key is woken: a second one replaces the first.
    SingleListenerPerKey,
    /// Listeners are woken before the key is removed (a `PUBLISH` sent before the `DEL`).
    NotifyBeforeRemove,
    /// Claims fencing tokens but restarts them at 1 for every acquisition.
    FencingResets,
    /// Fencing tokens are counted per store instance, not per backend.
    FencingPerInstance,
    /// The fencing token is kept in the lock entry: it restarts once the entry is deleted.
    FencingPerEntry,
    /// Claims to report the holder's TTL but reports a far-off expiry.
    HolderTtlLies,
    /// Reports the holder's full TTL on denial, not what is left of it.
    HolderTtlFullTtl,
    // ---- permits (semaphores, reader-writer locks) ----
    /// Permit requests ignore the limit and the weight: everyone gets in.
    PermitNoLimit,
    /// Every holding weighs 1 (a writer counts as one reader).
    PermitWeightIgnored,
    /// A denied writer reserves nothing: a stream of readers starves it.
    PermitNoReservation,
    /// Reservations never lapse: a writer that gave up keeps readers out.
    PermitReservationNeverLapses,
    /// `release_permit` answers `Ok` when the owner holds nothing.
    PermitReleaseNeverFails,
    /// `extend_permit` answers `Ok` when the owner holds nothing.
    PermitExtendIgnoresOwner,
    /// `extend_permit` answers `Ok` and changes nothing.
    PermitExtendIgnored,
    /// Permit TTLs are ignored: holdings never expire.
    PermitNeverExpires,
    /// The holder of a permit gets another one.
    PermitReentrant,
    /// `force_release_permits` removes nothing.
    PermitForceIgnored,
    /// Permits live in the lock table: a held lock on a key blocks its semaphore.
    PermitSharesLockKeys,
    /// `release_permit` answers at once and removes the holding 10 s later.
    PermitReleaseDeferred,
    /// Bad requests (weight 0, weight over the limit, limit 0) are clamped and granted.
    PermitBadRequestsGranted,
    /// Permit fencing tokens restart with each new set of holders.
    PermitTokensReset,
    /// Permit holdings expire 2 ms before their TTL (a clock cut to the millisecond,
    /// compared with `expiry <= now`).
    PermitExpiresEarly,
    /// `extend_permit` moves every holder's expiry, not only the owner's.
    PermitExtendMovesAll,
    /// `force_release_permits` removes the holders but keeps the reservation.
    PermitForceKeepsReservation,
    /// A writer granted after reserving keeps its reservation (until it lapses).
    PermitGrantKeepsReservation,
    /// Writers ignore another writer's reservation.
    PermitWritersIgnoreReservations,
    /// No input checks on permit calls, and `now + duration` overflows (panics).
    PermitNoInputChecks,
}
