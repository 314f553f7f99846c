//! A third-party-style store written only against lock-core's public API: locks are files
//! in a directory, shared by every process of one machine that opens the same directory.
//! It is the worked example of the README's "Your own store" and passes the whole
//! conformance kit (`examples/tests/fs_store.rs`).
//!
//! # Layout
//!
//! For each key, in the store's directory:
//! * `<name>.lock`: the lock, three lines: owner, expiry (microseconds since the Unix
//!   epoch, or `never`), and the key in hex. Absent when the key is free. Always replaced
//!   whole (written to a temporary file, then renamed over), so a reader never sees half
//!   a lock.
//! * `<name>.guard`: never deleted. Every read-modify-write of the key holds an exclusive
//!   `flock` on it, which makes `save`, `delete`, `extend` and `force_delete` atomic
//!   across threads and processes; the kernel drops the `flock` when a process dies, so a
//!   crash cannot wedge a key. It also holds the key's last fencing token.
//!
//! `<name>` is the key in hex (byte-exact, any bytes, safe in a file name), or for keys
//! too long for a file name, `h-` and a 128-bit hash of the key; the key kept in the lock
//! file then tells a (vanishingly unlikely) hash collision apart, which is reported as a
//! storage error rather than confused with another key.
//!
//! # Clock
//!
//! Expiry is judged by the machine's wall clock, the one clock all processes on it share.
//!
//! # Capabilities
//!
//! Fencing tokens (a per-key counter in the guard file) and the holder's remaining time
//! on denial. No release notification: waiters poll every retry `delay`.
//!
//! # Cancel safety
//!
//! Each operation runs whole on a blocking thread: dropping its future does not stop it,
//! but it completes within moments, with the lock and its expiry written in one rename.

use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lock_core::{
    AcquireResult, Acquisition, Capabilities, LockError, LockStore, StoreFactory, async_trait,
    validate,
};

/// The longest hex name used as is (a file name is at most 255 bytes on common file
/// systems, and `.guard` and a temporary suffix come on top).
const MAX_HEX_NAME: usize = 200;

/// A lock store in a directory. Cheap to clone; every instance (in this process or
/// another) opened on the same directory shares the same locks.
#[derive(Debug, Clone)]
pub struct FsStore {
    dir: Arc<PathBuf>,
}

/// What a lock file says.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LockFile {
    owner: String,
    /// Microseconds since the Unix epoch; `None`: never expires.
    expires_at: Option<u128>,
    key_hex: String,
}

impl LockFile {
    fn live(&self, now: u128) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    fn render(&self) -> String {
        let expiry = self
            .expires_at
            .map_or_else(|| "never".to_owned(), |at| at.to_string());
        format!("{}\n{expiry}\n{}\n", self.owner, self.key_hex)
    }

    fn parse(text: &str) -> Option<LockFile> {
        let mut lines = text.lines();
        let owner = lines.next()?.to_owned();
        let expires_at = match lines.next()? {
            "never" => None,
            us => Some(us.parse().ok()?),
        };
        let key_hex = lines.next()?.to_owned();
        Some(LockFile {
            owner,
            expires_at,
            key_hex,
        })
    }
}

fn storage(what: &str, path: &Path, e: io::Error) -> LockError {
    LockError::storage_msg(format!("file store: {what} {}: {e}", path.display()))
}

/// The wall clock, in microseconds since the Unix epoch.
fn now_us() -> Result<u128, LockError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .map_err(|e| LockError::storage_msg(format!("file store: the clock is before 1970: {e}")))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A 128-bit hash of the key (two SipHash-1-3 runs with fixed keys: the same in every
/// process built from the same Rust release).
fn hash128(key: &str) -> String {
    let mut out = String::new();
    for salt in [0u8, 1] {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// One key's files, with the guard held (released when dropped).
struct Held {
    guard: File,
    guard_path: PathBuf,
    lock_path: PathBuf,
    key_hex: String,
    dir: PathBuf,
}

impl Held {
    fn read(&self) -> Result<Option<LockFile>, LockError> {
        read_lock(&self.lock_path, &self.key_hex)
    }

    /// Replace the lock file whole: write a temporary file, then rename it over.
    fn write(&self, lock: &LockFile) -> Result<(), LockError> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = self.dir.join(format!(
            "tmp-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&tmp, lock.render()).map_err(|e| storage("cannot write", &tmp, e))?;
        fs::rename(&tmp, &self.lock_path).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            storage("cannot rename over", &self.lock_path, e)
        })
    }

    fn remove(&self) -> Result<(), LockError> {
        match fs::remove_file(&self.lock_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(storage("cannot remove", &self.lock_path, e)),
        }
    }

    /// The next fencing token of the key (kept in the guard file, which is never deleted).
    fn next_token(&mut self) -> Result<u64, LockError> {
        let mut text = String::new();
        self.guard
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.guard.read_to_string(&mut text))
            .map_err(|e| storage("cannot read", &self.guard_path, e))?;
        let last: u64 = match text.trim() {
            "" => 0,
            t => t.parse().map_err(|_| {
                LockError::storage_msg(format!(
                    "file store: {} holds {t:?}, not a fencing token",
                    self.guard_path.display()
                ))
            })?,
        };
        let next = last + 1;
        // A few bytes at offset 0, under the flock: no reader sees them half written.
        self.guard
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.guard.write_all(format!("{next:020}").as_bytes()))
            .map_err(|e| storage("cannot write", &self.guard_path, e))?;
        Ok(next)
    }
}

fn read_lock(path: &Path, key_hex: &str) -> Result<Option<LockFile>, LockError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(storage("cannot read", path, e)),
    };
    let lock = LockFile::parse(&text).ok_or_else(|| {
        LockError::storage_msg(format!("file store: {} is not a lock file", path.display()))
    })?;
    if lock.key_hex != key_hex {
        return Err(LockError::storage_msg(format!(
            "file store: {} belongs to another key (hash collision)",
            path.display()
        )));
    }
    Ok(Some(lock))
}

impl FsStore {
    /// The one acquire attempt behind `save` and `try_acquire` (neither calls the other).
    async fn acquire_once(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        validate::save_input(key, owner, ttl)?;
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.blocking(move |s| {
            let mut held = s.hold(&key)?;
            let now = now_us()?;
            if let Some(lock) = held.read()?.filter(|l| l.live(now)) {
                let left = lock
                    .expires_at
                    .map(|at| Duration::from_micros((at - now).min(u64::MAX as u128) as u64));
                return Ok(Acquisition::denied(left));
            }
            let token = held.next_token()?;
            held.write(&LockFile {
                owner,
                expires_at: expiry(now, ttl),
                key_hex: held.key_hex.clone(),
            })?;
            Ok(Acquisition::acquired_with_token(token))
        })
        .await
    }

    /// A store in `dir` (created if missing).
    pub fn open(dir: impl Into<PathBuf>) -> Result<FsStore, LockError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| storage("cannot create", &dir, e))?;
        Ok(FsStore { dir: Arc::new(dir) })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn paths(&self, key: &str) -> (PathBuf, PathBuf, String) {
        let key_hex = hex(key.as_bytes());
        let name = if key_hex.len() <= MAX_HEX_NAME {
            key_hex.clone()
        } else {
            format!("h-{}", hash128(key))
        };
        (
            self.dir.join(format!("{name}.lock")),
            self.dir.join(format!("{name}.guard")),
            key_hex,
        )
    }

    /// Hold `key`'s guard (blocking until no other thread or process holds it).
    fn hold(&self, key: &str) -> Result<Held, LockError> {
        let (lock_path, guard_path, key_hex) = self.paths(key);
        let guard = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&guard_path)
            .map_err(|e| storage("cannot open", &guard_path, e))?;
        lock_guard(&guard).map_err(|e| storage("cannot lock", &guard_path, e))?;
        Ok(Held {
            guard,
            guard_path,
            lock_path,
            key_hex,
            dir: self.dir.to_path_buf(),
        })
    }

    /// Run `op` on a blocking thread (file I/O and `flock` block).
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(FsStore) -> Result<T, LockError> + Send + 'static,
    ) -> Result<T, LockError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || op(this))
            .await
            .map_err(|e| LockError::storage_msg(format!("file store: blocking task failed: {e}")))?
    }
}

// `File::lock` (flock) is in std since Rust 1.89; this example needs that release.
#[allow(clippy::incompatible_msrv)]
fn lock_guard(file: &File) -> io::Result<()> {
    file.lock()
}

fn expiry(now: u128, ttl: Option<Duration>) -> Option<u128> {
    ttl.map(|t| now + t.as_micros().max(1))
}

#[async_trait]
impl LockStore for FsStore {
    async fn delete(&self, key: &str, owner: &str) -> Result<(), LockError> {
        validate::delete_input(key, owner)?;
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.blocking(move |s| {
            let held = s.hold(&key)?;
            match held.read()? {
                Some(lock) if lock.live(now_us()?) && lock.owner == owner => held.remove(),
                _ => Err(LockError::NotOwned),
            }
        })
        .await
    }

    async fn force_delete(&self, key: &str) -> Result<(), LockError> {
        validate::key(key)?;
        let key = key.to_owned();
        self.blocking(move |s| s.hold(&key)?.remove()).await
    }

    async fn exists(&self, key: &str) -> Result<bool, LockError> {
        validate::key(key)?;
        let key = key.to_owned();
        // Lock files are replaced whole, so reading needs no guard.
        self.blocking(move |s| {
            let (lock_path, _, key_hex) = s.paths(&key);
            let now = now_us()?;
            Ok(read_lock(&lock_path, &key_hex)?.is_some_and(|l| l.live(now)))
        })
        .await
    }

    async fn extend(&self, key: &str, owner: &str, duration: Duration) -> Result<(), LockError> {
        validate::extend_input(key, owner, duration)?;
        let (key, owner) = (key.to_owned(), owner.to_owned());
        self.blocking(move |s| {
            let held = s.hold(&key)?;
            let now = now_us()?;
            match held.read()? {
                Some(mut lock) if lock.live(now) && lock.owner == owner => {
                    lock.expires_at = expiry(now, Some(duration));
                    held.write(&lock)
                }
                _ => Err(LockError::NotOwned),
            }
        })
        .await
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_fencing_tokens(true)
            .with_holder_ttl(true)
    }

    async fn save(&self, key: &str, owner: &str, ttl: Option<Duration>) -> Result<bool, LockError> {
        Ok(self.acquire_once(key, owner, ttl).await?.acquired)
    }

    async fn try_acquire(&self, key: &str, owner: &str, ttl: Option<Duration>) -> AcquireResult {
        self.acquire_once(key, owner, ttl).await
    }

    fn name(&self) -> &str {
        "file"
    }
}

/// The store's factory function, for a [`lock_core::LockConfig`].
pub fn fs_store(dir: impl Into<PathBuf>) -> StoreFactory {
    let dir = dir.into();
    StoreFactory::new(move || {
        let dir = dir.clone();
        async move { FsStore::open(dir) }
    })
}
