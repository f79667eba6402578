//! The watchdog: a backstop against a shard whose executor sleeps through its
//! own timers.
//!
//! glommio 0.9 sleeps in `io_uring_enter` and relies on an io_uring timeout
//! to wake for its next timer. Rarely, under heavy start/kill churn, that
//! wake-up is lost and the shard sleeps forever with work queued for it
//! (DataDog/glommio#326 and #547 describe the same). Seen here twice: one
//! shard of a freshly restarted server never woke, and every command that
//! needed it hung, until a debugger's attach interrupted the syscall.
//!
//! Every shard ticks a heartbeat from a 20 ms timer ([`Heartbeats::tick`]).
//! This thread checks them every 20 ms. A shard whose heartbeat has not
//! moved for [`STALL`] while its thread used no CPU and sleeps now (state S
//! in `/proc`) is asleep through its timers, not busy and not waiting for a
//! CPU: it gets a signal (SIGURG, with a handler that does nothing), which
//! makes `io_uring_enter` return EINTR, so the executor runs its timers
//! again. A busy shard (a long script) or a runnable one starved of CPU is
//! never signalled. Each rescue is logged and counted in INFO
//! (`executor_rescues`).
//!
//! Why the state check: a shard blocked in a synchronous system call (an
//! unlink of a 256 MiB segment took 0.25 s here) also has a still heartbeat
//! and no CPU. Before the check, every log segment removed after a
//! checkpoint under `redis-benchmark -t mset -P 16` was "rescued" with a
//! signal and logged as a lost wake-up; such calls now run on the blocking
//! thread (`runtime::blocking`), and a thread in D state or waiting for a CPU
//! (R) is never signalled. That is what lets [`STALL`] be 60 ms (it was
//! 250 ms).
//!
//! May touch: the heartbeat counters, `/proc/self/task/<tid>/stat`, and
//! signals to shard threads. Nothing else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a heartbeat may stand still, with its thread idle, before the watchdog wakes it.
pub const STALL: Duration = Duration::from_millis(60);

/// How often the watchdog looks.
const PERIOD: Duration = Duration::from_millis(20);

/// The signal that interrupts a sleeping shard (its default action is to ignore, and strand sets no owner for it on sockets).
const WAKE_SIGNAL: libc::c_int = libc::SIGURG;

/// Per shard: a heartbeat counter and the kernel thread id of its executor.
#[derive(Debug, Default)]
pub struct Heartbeats {
    beats: Vec<AtomicU64>,
    tids: Vec<AtomicU64>,
    rescues: Vec<AtomicU64>,
}

impl Heartbeats {
    /// Counters for `shards` shards.
    pub fn new(shards: usize) -> Heartbeats {
        Heartbeats {
            beats: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            tids: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            rescues: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// How many times the watchdog woke this shard.
    pub fn rescues(&self, shard: usize) -> u64 {
        self.rescues.get(shard).map_or(0, |r| r.load(Ordering::Relaxed))
    }

    /// Called on a shard's executor thread when it starts: where to send the wake-up.
    pub fn register(&self, shard: usize) {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u64;
        if let Some(t) = self.tids.get(shard) {
            t.store(tid, Ordering::Relaxed);
        }
    }

    /// Called by a shard from a timer: it is awake.
    pub fn tick(&self, shard: usize) {
        if let Some(b) = self.beats.get(shard) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Installs the wake-up signal's do-nothing handler (without SA_RESTART, so a
/// sleeping syscall returns EINTR). Call before starting shard threads.
pub fn install_handler() {
    extern "C" fn nothing(_: libc::c_int) {}
    // SAFETY: a zeroed sigaction with a valid handler and an empty mask is a valid argument.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = nothing as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(WAKE_SIGNAL, &action, std::ptr::null_mut());
    }
}

/// What the watchdog remembers of one shard.
#[derive(Clone, Copy)]
struct Seen {
    beat: u64,
    cpu: u64,
    since: Instant,
}

/// Starts the watchdog thread; it stops once `stop` answers true.
pub fn spawn(hb: Arc<Heartbeats>, stop: impl Fn() -> bool + Send + 'static) {
    let spawned = std::thread::Builder::new().name("watchdog".into()).spawn(move || {
        let now = Instant::now();
        let mut seen: Vec<Seen> = hb.beats.iter().map(|_| Seen { beat: 0, cpu: 0, since: now }).collect();
        while !stop() {
            std::thread::sleep(PERIOD);
            for (shard, s) in seen.iter_mut().enumerate() {
                check(&hb, shard, s);
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the watchdog thread: {e}");
    }
}

fn check(hb: &Heartbeats, shard: usize, s: &mut Seen) {
    let beat = hb.beats[shard].load(Ordering::Relaxed);
    if beat != s.beat {
        // Alive: no need to read /proc.
        *s = Seen { beat, cpu: s.cpu, since: Instant::now() };
        return;
    }
    let tid = hb.tids[shard].load(Ordering::Relaxed);
    // A thread not started yet, or gone, is not asleep.
    let Some(t) = (tid != 0).then(|| thread_stat(tid)).flatten() else {
        *s = Seen { beat, cpu: 0, since: Instant::now() };
        return;
    };
    if t.cpu != s.cpu || !t.sleeping {
        *s = Seen { beat, cpu: t.cpu, since: Instant::now() };
        return;
    }
    let stalled = s.since.elapsed();
    if stalled < STALL {
        return;
    }
    let n = hb.rescues[shard].fetch_add(1, Ordering::Relaxed) + 1;
    // SAFETY: tgkill to a thread of this process with a signal whose handler is installed.
    let rc = unsafe { libc::syscall(libc::SYS_tgkill, libc::getpid(), tid as libc::pid_t, WAKE_SIGNAL) };
    tracing::warn!(
        shard,
        stalled_ms = stalled.as_millis() as u64,
        rescues = n,
        signalled = rc == 0,
        "a shard's executor slept through its timers (lost io_uring wake-up); woke it with a signal"
    );
    s.since = Instant::now();
}

/// What `/proc/self/task/<tid>/stat` says of a thread of this process.
struct ThreadStat {
    /// User plus system CPU ticks.
    cpu: u64,
    /// In an interruptible sleep (state S), as a thread waiting in `io_uring_enter` is.
    sleeping: bool,
}

fn thread_stat(tid: u64) -> Option<ThreadStat> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // Fields after the parenthesised name: the state is field 3, utime and stime 14 and 15 (1-based).
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let sleeping = fields.next()? == "S";
    let mut times = fields.skip(10);
    let utime: u64 = times.next()?.parse().ok()?;
    let stime: u64 = times.next()?.parse().ok()?;
    Some(ThreadStat { cpu: utime + stime, sleeping })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_running_threads_stat() {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u64;
        let t = thread_stat(tid).expect("own stat");
        assert!(!t.sleeping, "a thread reading its own stat is running");
        assert!(thread_stat(u64::MAX).is_none());
    }

    #[test]
    fn a_busy_thread_without_heartbeats_is_left_alone() {
        install_handler();
        let hb = Arc::new(Heartbeats::new(1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hb2 = hb.clone();
        let busy = std::thread::spawn(move || {
            hb2.register(0);
            let until = Instant::now() + STALL * 5;
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        });
        let stop2 = stop.clone();
        spawn(hb.clone(), move || stop2.load(Ordering::Relaxed));
        busy.join().expect("busy thread");
        stop.store(true, Ordering::Relaxed);
        assert_eq!(hb.rescues(0), 0, "a thread using CPU was taken for asleep");
    }

    #[test]
    fn a_sleeping_thread_is_woken_from_a_blocking_syscall() {
        install_handler();
        let hb = Arc::new(Heartbeats::new(1));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let hb2 = hb.clone();
        std::thread::spawn(move || {
            hb2.register(0);
            // A syscall that sleeps until a signal interrupts it: pause() returns only then.
            // SAFETY: pause has no preconditions.
            unsafe { libc::pause() };
            let _ = tx.send(());
        });
        let stop2 = stop.clone();
        spawn(hb.clone(), move || stop2.load(Ordering::Relaxed));
        let woke = rx.recv_timeout(Duration::from_secs(5)).is_ok();
        stop.store(true, Ordering::Relaxed);
        assert!(woke, "the watchdog did not interrupt the sleeping thread");
        assert!(hb.rescues(0) >= 1);
    }
}
