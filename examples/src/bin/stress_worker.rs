//! One process of the cross-process mutual-exclusion test (`tests/cross_process.rs`).
//!
//! ```text
//! stress_worker --store redis|postgres|mysql|sqlite|memory --url URL [--table NAME]
//!               --key KEY --tasks N --sections N --ttl-ms MS --auto-extend on|off
//!               --dir COUNTER_DIR [--long-ms MS] [--forms run|mixed]
//!               [--primitive mutex|semaphore:N|rw]
//! ```
//!
//! Each of `tasks` tasks runs `sections` critical sections guarded by one lock on `key`.
//! A section does a deliberately unsafe read-modify-write of a counter kept outside the
//! lock (`DIR/counter`, read, pause, write), and detects overlaps with an `O_EXCL`
//! marker file (`DIR/marker`): if the marker already exists, someone else is inside.
//! With `--long-ms`, the first section of task 0 lasts that long (longer than the TTL,
//! to prove auto-extension). With `--forms mixed`, sections rotate through `run`, a guard
//! released explicitly, and a guard of a clone that is *dropped* (released in the
//! background) right before the same lock acquires again — the interleaving where a
//! background release must never undo the next holding.
//!
//! `--primitive semaphore:N` guards the sections with a semaphore of `N` permits: each
//! holder puts a file `h-…` in `DIR` while inside and counts those present; the largest
//! count is `max_holders` (the unsafe counter is not used: N holders may be inside).
//! `--primitive rw` uses a reader-writer lock: every fourth task writes (a `w-…` file, the
//! unsafe counter increment, and an overlap if any other holder's file is present), the
//! others read (an `r-…` file; an overlap if a writer's file is present).
//!
//! The process prints one line of JSON:
//! `{"sections":…,"overlaps":…,"lost":…,"storage_errors":…,"max_holders":…,"writes":…}`
//! and exits 0, or prints the error and exits 1.

use std::fs::OpenOptions;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lock_core::{FactoryOptions, LockError, LockFactory, LockStore, RetryConfig};
use lock_store_database::{DatabaseStore, DatabaseStoreOptions};
use lock_store_memory::MemoryStore;
use lock_store_redis::{RedisStore, RedisStoreOptions};

struct Args {
    store: String,
    url: String,
    table: String,
    key: String,
    tasks: u32,
    sections: u32,
    ttl: Duration,
    auto_extend: bool,
    dir: PathBuf,
    long: Option<Duration>,
    mixed: bool,
    primitive: Primitive,
}

#[derive(Clone, Copy)]
enum Primitive {
    Mutex,
    Semaphore(u32),
    Rw,
}

/// What a task's sections do (see the module docs).
#[derive(Clone, Copy)]
enum Role {
    Exclusive,
    Permit,
    Reader,
    Writer,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut get = std::collections::HashMap::new();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?
            .to_owned();
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        get.insert(name, value);
    }
    let req = |name: &str| {
        get.get(name)
            .cloned()
            .ok_or_else(|| format!("missing --{name}"))
    };
    let num = |name: &str| -> Result<u64, String> {
        req(name)?.parse().map_err(|e| format!("--{name}: {e}"))
    };
    Ok(Args {
        store: req("store")?,
        url: get.get("url").cloned().unwrap_or_default(),
        table: get
            .get("table")
            .cloned()
            .unwrap_or_else(|| "locks".to_owned()),
        key: req("key")?,
        tasks: num("tasks")? as u32,
        sections: num("sections")? as u32,
        ttl: Duration::from_millis(num("ttl-ms")?),
        auto_extend: match req("auto-extend")?.as_str() {
            "on" => true,
            "off" => false,
            other => return Err(format!("--auto-extend on|off, not {other:?}")),
        },
        dir: PathBuf::from(req("dir")?),
        long: get
            .get("long-ms")
            .map(|v| v.parse().map(Duration::from_millis))
            .transpose()
            .map_err(|e| format!("--long-ms: {e}"))?,
        mixed: match get.get("forms").map(String::as_str) {
            None | Some("run") => false,
            Some("mixed") => true,
            Some(other) => return Err(format!("--forms run|mixed, not {other:?}")),
        },
        primitive: match get.get("primitive").map(String::as_str) {
            None | Some("mutex") => Primitive::Mutex,
            Some("rw") => Primitive::Rw,
            Some(other) => match other.strip_prefix("semaphore:").map(str::parse) {
                Some(Ok(n)) => Primitive::Semaphore(n),
                _ => return Err(format!("--primitive mutex|semaphore:N|rw, not {other:?}")),
            },
        },
    })
}

async fn connect(args: &Args) -> Result<Arc<dyn LockStore>, LockError> {
    Ok(match args.store.as_str() {
        "redis" => Arc::new(
            RedisStore::connect(
                RedisStoreOptions::from_url(&args.url).with_timeout(Duration::from_secs(5)),
            )
            .await?,
        ),
        "postgres" | "mysql" | "sqlite" => Arc::new(
            DatabaseStore::connect(
                DatabaseStoreOptions::new(&args.url).table_name(args.table.clone()),
            )
            .await?,
        ),
        "memory" => Arc::new(MemoryStore::new()),
        other => return Err(LockError::invalid(format!("unknown store kind {other:?}"))),
    })
}

#[derive(Default)]
struct Tally {
    sections: AtomicU64,
    overlaps: AtomicU64,
    lost: AtomicU64,
    storage_errors: AtomicU64,
    max_holders: AtomicU64,
    writes: AtomicU64,
}

/// A section under a semaphore or reader-writer lock: announce this holder with a file
/// while inside, and look at who else is.
async fn shared_section(
    dir: &Path,
    hold: Duration,
    tally: &Tally,
    role: Role,
    me: &str,
) -> std::io::Result<()> {
    let prefix = if matches!(role, Role::Writer) {
        "w-"
    } else {
        "h-"
    };
    let prefix = if matches!(role, Role::Reader) {
        "r-"
    } else {
        prefix
    };
    let mine = dir.join(format!("{prefix}{me}"));
    std::fs::write(&mine, b"")?;
    let mut present = 0u64;
    let mut writers = 0u64;
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("h-") || name.starts_with("r-") || name.starts_with("w-") {
            present += 1;
        }
        if name.starts_with("w-") {
            writers += 1;
        }
    }
    tally.max_holders.fetch_max(present, Ordering::SeqCst);
    let overlap = match role {
        Role::Writer => present > 1,
        Role::Reader => writers > 0,
        Role::Permit | Role::Exclusive => false,
    };
    if overlap {
        tally.overlaps.fetch_add(1, Ordering::SeqCst);
    }
    if matches!(role, Role::Writer) {
        increment_slowly(dir, hold).await?;
        tally.writes.fetch_add(1, Ordering::SeqCst);
    } else {
        tokio::time::sleep(hold).await;
    }
    std::fs::remove_file(&mine)?;
    tally.sections.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// The section of `role`.
async fn section_as(
    role: Role,
    me: &str,
    dir: &Path,
    hold: Duration,
    tally: &Tally,
) -> std::io::Result<()> {
    match role {
        Role::Exclusive => section(dir, hold, tally).await,
        _ => shared_section(dir, hold, tally, role, me).await,
    }
}

/// The critical section: an unsafe read-modify-write that only the lock makes safe.
async fn section(dir: &Path, hold: Duration, tally: &Tally) -> std::io::Result<()> {
    let marker = dir.join("marker");
    let mine = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
    {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            tally.overlaps.fetch_add(1, Ordering::SeqCst);
            false
        }
        Err(e) => return Err(e),
    };
    increment_slowly(dir, hold).await?;
    if mine {
        std::fs::remove_file(&marker)?;
    }
    tally.sections.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// Add one to the counter file in `dir`, holding `hold` between the read and the write
/// to widen the window: any overlap loses an increment.
async fn increment_slowly(dir: &Path, hold: Duration) -> std::io::Result<()> {
    let counter = dir.join("counter");
    let value: u64 = match std::fs::read_to_string(&counter) {
        Ok(s) => s.trim().parse().unwrap_or(0),
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    tokio::time::sleep(hold).await;
    std::fs::write(&counter, (value + 1).to_string())?;
    Ok(())
}

async fn task(
    factory: LockFactory,
    args: Arc<Args>,
    index: u32,
    tally: Arc<Tally>,
) -> Result<(), String> {
    let (lock, role) = match args.primitive {
        Primitive::Mutex => (factory.create_lock(args.key.clone()), Role::Exclusive),
        Primitive::Semaphore(n) => (
            factory
                .create_semaphore(args.key.clone(), n)
                .map(|s| s.as_lock().clone()),
            Role::Permit,
        ),
        Primitive::Rw => {
            let rw = factory.create_rw_lock(args.key.clone());
            if index.is_multiple_of(4) {
                (rw.map(|rw| rw.write().clone()), Role::Writer)
            } else {
                (rw.map(|rw| rw.read().clone()), Role::Reader)
            }
        }
    };
    let lock = lock.map_err(|e| e.to_string())?;
    let me = format!("{}-{index}", std::process::id());
    for s in 0..args.sections {
        let hold = match args.long {
            Some(long) if index == 0 && s == 0 => long,
            _ => Duration::from_millis(u64::from((index + s) % 3)),
        };
        // A transient store error (connection dropped by the server, …) is not a
        // mutual-exclusion failure: retry the section if it did not run, count it, and
        // report the count. A section that ran counts as done even if its release failed
        // (the lock then expires with its TTL).
        let mut storage_errors = 0;
        loop {
            let dir = args.dir.clone();
            let t = tally.clone();
            let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let r = ran.clone();
            let me_inside = me.clone();
            let form = if args.mixed { (index + s) % 3 } else { 0 };
            let outcome = match form {
                0 => {
                    lock.run_with_signal(|lost| async move {
                        r.store(true, Ordering::SeqCst);
                        let result = section_as(role, &me_inside, &dir, hold, &t).await;
                        (result, lost.is_lost())
                    })
                    .await
                }
                1 => guarded(&lock, true, (role, &me), &dir, hold, &t, &r).await,
                _ => guarded(&lock.clone(), false, (role, &me), &dir, hold, &t, &r).await,
            };
            match outcome {
                Err(e) if e.is_storage() && storage_errors < 5 => {
                    storage_errors += 1;
                    tally.storage_errors.fetch_add(1, Ordering::SeqCst);
                    eprintln!("stress_worker: task {index} section {s}: {e} (tolerated)");
                    if ran.load(Ordering::SeqCst) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(format!("task {index} section {s}: {e}")),
                Ok(None) => return Err(format!("task {index} section {s}: not acquired in time")),
                Ok(Some((Err(e), _))) => return Err(format!("task {index} section {s}: io: {e}")),
                Ok(Some((Ok(()), lost))) => {
                    if lost {
                        tally.lost.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A section under a guard: released explicitly (`release`), or dropped, which
/// releases in the background while the caller goes on to acquire again.
async fn guarded(
    lock: &lock_core::Lock,
    release: bool,
    who: (Role, &str),
    dir: &Path,
    hold: Duration,
    tally: &Tally,
    ran: &std::sync::atomic::AtomicBool,
) -> Result<Option<(std::io::Result<()>, bool)>, LockError> {
    let Some(guard) = lock.acquire_guard().await? else {
        return Ok(None);
    };
    let lost = guard.lost_signal();
    ran.store(true, Ordering::SeqCst);
    let result = section_as(who.0, who.1, dir, hold, tally).await;
    let was_lost = lost.is_lost();
    if release {
        guard.release().await?;
    } else {
        drop(guard);
    }
    Ok(Some((result, was_lost)))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("stress_worker: {e}");
            return ExitCode::from(2);
        }
    };
    let store = match connect(&args).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stress_worker: connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = FactoryOptions::default()
        .retry(
            RetryConfig::default()
                .delay(Duration::from_millis(10))
                .timeout(Duration::from_secs(40)),
        )
        .default_ttl(Some(args.ttl));
    let factory = LockFactory::from_shared(store, options).auto_extend(args.auto_extend);
    let tally = Arc::new(Tally::default());
    let handles: Vec<_> = (0..args.tasks)
        .map(|i| tokio::spawn(task(factory.clone(), args.clone(), i, tally.clone())))
        .collect();
    let mut failed = false;
    for h in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("stress_worker: {e}");
                failed = true;
            }
            Err(e) => {
                eprintln!("stress_worker: task panicked: {e}");
                failed = true;
            }
        }
    }
    let count = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::SeqCst);
    println!(
        "{}",
        serde_json::json!({
            "sections": count(&tally.sections),
            "overlaps": count(&tally.overlaps),
            "lost": count(&tally.lost),
            "storage_errors": count(&tally.storage_errors),
            "max_holders": count(&tally.max_holders),
            "writes": count(&tally.writes),
        })
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
