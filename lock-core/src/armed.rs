/// A disarmable drop guard: runs `on_drop(payload)` when dropped, unless
/// [`disarm`](Armed::disarm)ed first. Every "clean up unless completed" site of the
/// crate (a cancelled acquire attempt, a cancelled `run`, a dropped `LockGuard`) is one
/// of these, so the rule "the clean-up runs exactly once, or not at all" lives here.
///
/// The clean-up is a plain `fn` over a payload, so arming costs no allocation.
pub(crate) struct Armed<T> {
    payload: Option<T>,
    on_drop: fn(T),
}

impl<T> Armed<T> {
    pub(crate) fn new(payload: T, on_drop: fn(T)) -> Self {
        Armed {
            payload: Some(payload),
            on_drop,
        }
    }

    /// Cancel the clean-up and take the payload back (always `Some`: only `disarm`,
    /// which consumes the guard, and `drop` take it).
    pub(crate) fn disarm(mut self) -> Option<T> {
        self.payload.take()
    }

    /// The payload.
    pub(crate) fn get(&self) -> &T {
        match &self.payload {
            Some(payload) => payload,
            // Only `disarm` (which consumes the guard) and `drop` take the payload.
            None => unreachable!("an armed guard holds its payload until disarmed or dropped"),
        }
    }
}

impl<T> Drop for Armed<T> {
    fn drop(&mut self) {
        if let Some(payload) = self.payload.take() {
            (self.on_drop)(payload);
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Armed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Armed")
            .field("payload", &self.payload)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static RUNS: AtomicUsize = AtomicUsize::new(0);

    fn count(n: usize) {
        RUNS.fetch_add(n, Ordering::SeqCst);
    }

    #[test]
    fn runs_once_on_drop_and_never_when_disarmed() {
        drop(Armed::new(1, count));
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
        let kept = Armed::new(10, count).disarm();
        assert_eq!(kept, Some(10));
        assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    }
}
