//! Storage faults injected on purpose, under the log, for tests.
//!
//! A disk that fails a write, fills up, fails a sync or tears a block on a
//! crash is rare and hard to produce on demand, and the log's answer to
//! each (refuse writes with `MISCONF`, retry, recover, never acknowledge
//! what did not reach the file) is exactly the code that must not break
//! unnoticed. This module holds one process-wide fault plan that the log's
//! flusher consults before each operation it submits: [`check`] says
//! whether that operation fails, and how. The server arms a plan only
//! through `DEBUG FAULT`, which is refused unless the server was started
//! with `--enable-debug-command`; when no plan is armed, [`check`] is one
//! relaxed atomic load.
//!
//! What each [`Kind`] does at its [`Target`]:
//! - `Eio`, `Enospc`: the operation is not submitted and fails with that errno.
//! - `Short` (writes): half of the blocks (at least one, fewer than all) are
//!   written, then the write reports the short count.
//! - `Torn` (writes): the first half of the group is written with its last
//!   block's second half replaced by garbage, then the process kills itself
//!   with SIGKILL: the disk a crash in the middle of a write leaves behind.
//! - `Slow` (writes, syncs): the operation waits [`SLOW`] first (without
//!   blocking the shard), then runs: a disk that stalls.
//!
//! May touch: nothing but its own state; the log decides what a fault means.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Which operation of the log fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Writes of record blocks into a segment.
    Write,
    /// fdatasync of a segment.
    Sync,
    /// Creating (allocating) a new segment file.
    Create,
}

/// How it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// EIO.
    Eio,
    /// ENOSPC.
    Enospc,
    /// A short write.
    Short,
    /// A torn block, then a crash.
    Torn,
    /// A stall of [`SLOW`] before the operation.
    Slow,
}

/// How long a `Slow` fault stalls an operation.
pub const SLOW: std::time::Duration = std::time::Duration::from_millis(100);

/// An armed fault: `target` fails with `kind`, `count` times (0: until cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// The operation that fails.
    pub target: Target,
    /// How.
    pub kind: Kind,
    /// How many operations fail before the plan disarms itself; 0: every one until [`clear`].
    pub count: u32,
    /// Only this shard's log, or every shard's.
    pub shard: Option<u32>,
}

impl Plan {
    /// Parses `DEBUG FAULT`'s words: target, kind, then optional count and shard.
    pub fn parse(target: &str, kind: &str, count: Option<&str>, shard: Option<&str>) -> Result<Plan, String> {
        let target = match target.to_ascii_lowercase().as_str() {
            "write" => Target::Write,
            "sync" => Target::Sync,
            "create" => Target::Create,
            other => return Err(format!("unknown fault target '{other}' (write, sync or create)")),
        };
        let kind = match kind.to_ascii_lowercase().as_str() {
            "eio" => Kind::Eio,
            "enospc" => Kind::Enospc,
            "short" => Kind::Short,
            "torn" => Kind::Torn,
            "slow" => Kind::Slow,
            other => return Err(format!("unknown fault kind '{other}' (eio, enospc, short, torn or slow)")),
        };
        if matches!(kind, Kind::Short | Kind::Torn) && target != Target::Write {
            return Err("short and torn faults apply to writes only".into());
        }
        if kind == Kind::Slow && target == Target::Create {
            return Err("slow faults apply to writes and syncs".into());
        }
        let count = count.map_or(Ok(0), |c| c.parse().map_err(|_| format!("invalid fault count '{c}'")))?;
        let shard = shard.map(|s| s.parse().map_err(|_| format!("invalid shard '{s}'"))).transpose()?;
        Ok(Plan { target, kind, count, shard })
    }
}

static ARMED: AtomicBool = AtomicBool::new(false);
static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

/// Arms `plan`, replacing any other.
pub fn arm(plan: Plan) {
    let mut p = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    *p = Some(plan);
    ARMED.store(true, Ordering::Release);
}

/// Disarms every fault.
pub fn clear() {
    let mut p = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    *p = None;
    ARMED.store(false, Ordering::Release);
}

/// The armed plan, if any.
pub fn armed() -> Option<Plan> {
    if !ARMED.load(Ordering::Relaxed) {
        return None;
    }
    *PLAN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the next `target` operation of `shard`'s log fails, and how; counts it against the plan.
pub fn check(target: Target, shard: u32) -> Option<Kind> {
    if !ARMED.load(Ordering::Relaxed) {
        return None;
    }
    let mut p = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    let plan = p.as_mut()?;
    if plan.target != target || plan.shard.is_some_and(|s| s != shard) {
        return None;
    }
    let kind = plan.kind;
    if plan.count > 0 {
        plan.count -= 1;
        if plan.count == 0 {
            *p = None;
            ARMED.store(false, Ordering::Release);
        }
    }
    Some(kind)
}

/// The error an injected `kind` reports, as the kernel's would read.
pub fn error(kind: Kind) -> std::io::Error {
    let errno = match kind {
        Kind::Enospc => libc::ENOSPC,
        _ => libc::EIO,
    };
    let os = std::io::Error::from_raw_os_error(errno);
    std::io::Error::new(os.kind(), format!("{os} (injected)"))
}

/// Ends the process as a power cut or `kill -9` would: no cleanup, no flush.
pub fn crash() -> ! {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_plan_fires_that_often_then_disarms_and_other_targets_pass() {
        // One test touches the global plan, so the checks cannot race another test.
        arm(Plan::parse("write", "eio", Some("2"), Some("1")).unwrap());
        assert_eq!(check(Target::Sync, 1), None);
        assert_eq!(check(Target::Write, 0), None, "another shard");
        assert_eq!(check(Target::Write, 1), Some(Kind::Eio));
        assert_eq!(check(Target::Write, 1), Some(Kind::Eio));
        assert_eq!(check(Target::Write, 1), None);
        assert_eq!(armed(), None);
        arm(Plan::parse("CREATE", "ENOSPC", None, None).unwrap());
        for shard in 0..5 {
            assert_eq!(check(Target::Create, shard), Some(Kind::Enospc));
        }
        clear();
        assert_eq!(check(Target::Create, 0), None);
        assert!(Plan::parse("sync", "torn", None, None).is_err());
        assert!(Plan::parse("read", "eio", None, None).is_err());
        assert!(Plan::parse("write", "eio", Some("x"), None).is_err());
        assert_eq!(error(Kind::Enospc).raw_os_error(), None);
        assert!(error(Kind::Enospc).to_string().contains("No space left on device"));
    }
}
