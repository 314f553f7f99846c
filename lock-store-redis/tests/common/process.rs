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

/// Start `redis-server` with `args`, output discarded.
pub fn redis_server<I, S>(args: I) -> std::io::Result<KillOnDrop>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new("redis-server")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(KillOnDrop)
}
