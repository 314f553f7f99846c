//! Child processes of a test (servers it starts), killed when dropped.

use std::process::{Child, Command, Stdio};

/// A child process, killed (SIGKILL) and reaped when dropped.
pub struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `redis-server` with `args`, output discarded; when it cannot be started, report
/// the test skipped (`service` at `url`: see `skip_unreachable`) and give `None`, and
/// the test returns.
pub fn redis_server<I, S>(service: &str, url: &str, args: I) -> Option<KillOnDrop>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let started = Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match started {
        Ok(child) => Some(KillOnDrop(child)),
        Err(e) => {
            lock_testkit::services::skip_unreachable(service, url, format!("redis-server: {e}"));
            None
        }
    }
}
