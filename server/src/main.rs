//! The `strand` binary: parses the configuration, locks the data directory,
//! starts one pinned glommio executor per shard, and waits for them to stop
//! (SHUTDOWN, SIGTERM or SIGINT), after every shard has synced its log.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use strand_engine::runtime::{self, ExecutorConfig};

use strand_server::config::{Config, Flags};
use strand_server::shard::{self, ShardStart, Shared, StartGate};

/// mimalloc's per-thread heaps suit shards that allocate and free on their own
/// thread; a reply built on one shard and freed on another goes back to its
/// heap without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Memory glommio registers with io_uring per shard for DMA buffers.
const IO_MEMORY: usize = 8 << 20;

fn main() {
    let flags = Flags::parse();
    let config = match Config::load(flags) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strand: {e}");
            std::process::exit(2);
        }
    };
    init_tracing(&config.loglevel);
    let (users, tls) = match load_acl(&config).and_then(|u| Ok((u, load_tls(&config)?))) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("strand: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = serve(config, users, tls) {
        tracing::error!("{e}");
        eprintln!("strand: {e}");
        std::process::exit(1);
    }
}

fn init_tracing(level: &str) {
    let level = match level {
        "warning" | "warn" => "warn",
        "debug" | "verbose" => "debug",
        "notice" => "info",
        other => other,
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

/// The users at start: the ACL file's if one is configured, else the default user
/// (with --requirepass as its password); then the protected-mode check.
fn load_acl(config: &Config) -> Result<strand_server::acl::Users, String> {
    let users = match &config.aclfile {
        Some(path) => strand_server::acl::AclState::read_file(path, config.requirepass.as_deref())
            .map_err(|e| format!("{e} (create the file, empty or with `user <name> <rules>...` lines, or drop --aclfile)"))?,
        None => strand_server::acl::Users::new(config.requirepass.as_deref()),
    };
    config.check_protected(users.default_user().open())?;
    Ok(users)
}

/// The TLS acceptor when `tls-port` is set: the certificate and key files are read now, once.
fn load_tls(config: &Config) -> Result<Option<futures_rustls::TlsAcceptor>, String> {
    config.tls.as_ref().map(strand_server::tls::acceptor).transpose()
}

fn serve(config: Config, users: strand_server::acl::Users, tls: Option<futures_rustls::TlsAcceptor>) -> Result<(), String> {
    let _lock = if config.persistence { Some(lock_dir(&config.dir)?) } else { None };
    check_memlock();
    block_signals();
    let n = config.shards;
    let shared = Arc::new(Shared::new(n));
    shared.acl.install(users, config.aclfile.clone());
    spawn_signal_thread(shared.clone());
    strand_server::watchdog::install_handler();
    let watched = shared.clone();
    strand_server::watchdog::spawn(shared.heartbeats.clone(), move || watched.shutdown.load(Ordering::Relaxed));
    let bus = strand_engine::bus::Bus::new(n, 1024);
    let gate = Arc::new(StartGate::default());
    let exited = Arc::new(AtomicUsize::new(0));
    let cpus = runtime::online_cpus();
    tracing::info!(shards = n, dir = %config.dir.display(), appendfsync = config.appendfsync.name(), persistence = config.persistence, "starting strand {}", env!("CARGO_PKG_VERSION"));
    let mut handles = Vec::with_capacity(n);
    for id in 0..n {
        let start = ShardStart {
            id,
            config: config.clone(),
            shared: shared.clone(),
            outbox: bus.outbox(id),
            receiver: bus.receiver(id),
            gate: gate.clone(),
            tls: tls.clone(),
        };
        let exec = ExecutorConfig {
            name: format!("shard-{id:03}"),
            cpu: cpus[id % cpus.len()],
            io_memory: IO_MEMORY,
            preempt: Duration::from_millis(1),
            spin_before_park: Duration::from_micros(config.spin_before_park),
        };
        let guard = ExitGuard(exited.clone());
        let handle = runtime::start_executor(&exec, move || async move {
            let _guard = guard;
            let id = start.id;
            shard::run(start).await.inspect_err(|e| tracing::error!(shard = id, "{e}"))
        });
        match handle {
            Ok(h) => handles.push(h),
            Err(e) => {
                gate.open(false);
                return Err(format!("cannot start shard {id}: {e}"));
            }
        }
    }
    // A shard whose executor could not be built never reports: watch the threads too.
    let started = gate.collect(n, || {
        (exited.load(Ordering::SeqCst) > 0).then(|| "a shard's executor stopped during start-up (see the log above)".to_string())
    });
    gate.open(started.is_ok());
    if let Err(e) = &started {
        tracing::error!("start-up failed: {e}");
        shared.shutdown.store(true, Ordering::SeqCst);
    }
    let mut first_error = started.err();
    for (id, h) in handles.into_iter().enumerate() {
        let result = match h.join() {
            Ok(r) => r,
            Err(e) => Err(format!("shard {id} executor failed: {e}")),
        };
        if let Err(e) = result {
            shared.shutdown.store(true, Ordering::SeqCst);
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            tracing::info!("strand stopped");
            Ok(())
        }
    }
}

/// Counts shard threads that ended: dropped with the shard's start-up closure,
/// also when glommio could not build the executor and never ran it.
struct ExitGuard(Arc<AtomicUsize>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Takes an exclusive lock on DIR/LOCK so two servers never share a data directory.
fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating data directory {}: {e}", dir.display()))?;
    let path = dir.join("LOCK");
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!("data directory {} is in use by another strand process (lock on {} held)", dir.display(), path.display()));
    }
    Ok(file)
}

/// Warns when io_uring buffer registration will fail for lack of locked memory.
fn check_memlock() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit fills the struct we pass.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) } == 0;
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root || (ok && (lim.rlim_cur == libc::RLIM_INFINITY || lim.rlim_cur as usize >= IO_MEMORY)) {
        tracing::info!(io_memory = IO_MEMORY, "io_uring buffers can be registered (locked memory available)");
    } else {
        tracing::warn!(memlock_limit = lim.rlim_cur, io_memory = IO_MEMORY,
            "RLIMIT_MEMLOCK is too low to register io_uring buffers for each shard; I/O falls back to unregistered buffers. Raise it with `ulimit -l unlimited` or LimitMEMLOCK=infinity in the systemd unit");
    }
}

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise the set we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        set
    }
}

/// Blocks SIGTERM and SIGINT in this thread, and so in every shard thread started after it.
fn block_signals() {
    let set = signal_set();
    // SAFETY: changing this thread's signal mask with a valid set.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
}

/// Waits for SIGTERM or SIGINT, then asks every shard to sync and stop.
fn spawn_signal_thread(shared: Arc<Shared>) {
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let set = signal_set();
            let mut sig: libc::c_int = 0;
            // SAFETY: sigwait on a valid set of signals blocked in every thread.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                tracing::info!(signal = sig, "signal received: syncing and shutting down");
                shared.shutdown.store(true, Ordering::SeqCst);
            }
        })
        .ok();
}
