//! A shard: one thread pinned to one core, owning its keyspace and log.
//!
//! [`ShardState`] is everything a command handler may touch; it lives in an
//! `Rc<RefCell<_>>` on its own thread and is never shared. [`run`] starts a
//! shard: recovery, the log, the listeners (plaintext and TLS), the bus receiver, and the
//! background expiry. What all shards share read-only is in [`Shared`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strand_engine::keyspace::tx::Recovered;
use strand_engine::keyspace::Keyspace;
use strand_engine::runtime;
use strand_engine::slot::SlotMap;

use crate::config::Config;

/// What every shard shares, read-only or atomic, never on the request path.
pub struct Shared {
    /// Which shard owns each slot.
    pub slots: SlotMap,
    /// Process start.
    pub started: Instant,
    /// Unix seconds at start.
    pub started_unix: u64,
    /// Random 40-hex-digit run id, as Redis.
    pub run_id: String,
    /// Next client id.
    pub next_client_id: AtomicU64,
    /// Next slow log entry id, shared so ids are unique and increase across shards
    /// (touched only by commands slow enough to be logged).
    pub next_slowlog_id: AtomicU64,
    /// Connected clients on all shards.
    pub clients: AtomicU64,
    /// Set when SHUTDOWN or SIGTERM was asked for.
    pub shutdown: AtomicBool,
    /// Whether shards take a checkpoint before they stop (SHUTDOWN NOSAVE clears it).
    pub shutdown_save: AtomicBool,
    /// Bit N set while shard N's log refuses writes (each shard updates its bit every 20 ms):
    /// SHUTDOWN without NOSAVE/FORCE is refused then, as Redis refuses it when it cannot save.
    pub logs_failed: AtomicU64,
    /// Per shard: the Lua script it runs now, for BUSY replies and SCRIPT KILL.
    pub scripts: Vec<crate::scripting::Running>,
    /// Every script body loaded by EVAL or SCRIPT LOAD on any shard, by SHA-1,
    /// so EVALSHA finds it on any shard; touched only on a shard's cache miss.
    pub script_bodies: std::sync::Mutex<std::collections::HashMap<String, Arc<[u8]>>>,
    /// Each shard's heartbeat, for the [`crate::watchdog`].
    pub heartbeats: Arc<crate::watchdog::Heartbeats>,
    /// ACL users; connections read its epoch once per read and take their user's new version.
    pub acl: crate::acl::AclState,
    /// Cross-shard transactions: the epoch new ones run in, how many run now,
    /// and the pause a checkpoint sets while it begins (see [`crate::coordinator`]).
    pub tx: crate::coordinator::Epochs,
}

impl Shared {
    /// Shared state for `shards` shards.
    pub fn new(shards: usize) -> Shared {
        let run_id = (0..40).map(|_| char::from_digit(rand::random::<u32>() % 16, 16).unwrap_or('0')).collect();
        Shared {
            slots: SlotMap::new(shards),
            started: Instant::now(),
            started_unix: strand_engine::clock::unix_ms() / 1000,
            run_id,
            next_client_id: AtomicU64::new(1),
            next_slowlog_id: AtomicU64::new(0),
            clients: AtomicU64::new(0),
            shutdown: AtomicBool::new(false),
            shutdown_save: AtomicBool::new(true),
            logs_failed: AtomicU64::new(0),
            scripts: (0..shards).map(|_| crate::scripting::Running::default()).collect(),
            script_bodies: Default::default(),
            heartbeats: Arc::new(crate::watchdog::Heartbeats::new(shards)),
            acl: Default::default(),
            tx: crate::coordinator::Epochs::new(shards),
        }
    }

    /// A new client id.
    pub fn client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// What CLIENT LIST shows of a connection; owned by the connection, listed by its shard.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Client id.
    pub id: u64,
    /// Peer address.
    pub addr: String,
    /// Local address.
    pub laddr: String,
    /// CLIENT SETNAME.
    pub name: Vec<u8>,
    /// Selected database.
    pub db: usize,
    /// Protocol version (2 or 3).
    pub resp: u8,
    /// Unix ms of connect.
    pub created_ms: u64,
    /// Unix ms of the last command.
    pub last_cmd_ms: u64,
    /// Name of the last command.
    pub last_cmd: String,
    /// Set by CLIENT KILL; the connection closes when it sees it.
    pub killed: bool,
    /// The socket, for CLIENT KILL (shut down from the owning shard).
    pub fd: i32,
    /// Bytes waiting in the query buffer.
    pub qbuf: usize,
    /// CLIENT SETINFO lib-name / lib-ver.
    pub lib_name: String,
    /// CLIENT SETINFO lib-ver.
    pub lib_ver: String,
    /// The ACL user the connection is authenticated as.
    pub user: String,
    /// Output held for the client and not yet written: unwritten replies and
    /// pub/sub messages in its mailbox ([`crate::limits`]).
    pub omem: usize,
    /// Unix ms when `omem` went over the soft output limit, while it stays over.
    pub soft_since_ms: Option<u64>,
    /// Unix ms of the last read or completed write, for the idle `timeout`.
    pub last_io_ms: u64,
    /// Waiting in a blocking command (no idle timeout then).
    pub blocked: bool,
    /// Has channel or pattern subscriptions: the `pubsub` output class, no idle timeout.
    pub subscribed: bool,
    /// Closed for overcoming its output buffer limit.
    pub obuf_closed: bool,
}

/// Per-shard counters for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    /// Commands executed on this shard.
    pub commands: u64,
    /// Connections accepted by this shard.
    pub connections: u64,
    /// Connections refused by maxclients.
    pub rejected: u64,
    /// Batches received from other shards.
    pub remote_batches: u64,
    /// Batches sent to other shards.
    pub sent_batches: u64,
    /// Cross-shard transactions this shard coordinated (MSET, MSETNX, EXEC over several shards).
    pub cross_transactions: u64,
    /// Parts of cross-shard transactions this shard granted locks to.
    pub cross_parts: u64,
    /// Commands and batches that waited for a key locked by a cross-shard transaction.
    pub lock_waits: u64,
    /// Bytes read from clients.
    pub net_in: u64,
    /// Bytes written to clients.
    pub net_out: u64,
    /// Error replies.
    pub errors: u64,
    /// Connections handed to another shard.
    pub migrated: u64,
    /// Connections taken over from another shard.
    pub adopted: u64,
    /// Connections closed for overcoming their output buffer limit.
    pub obuf_disconnections: u64,
    /// Connections closed for overcoming the query buffer limit.
    pub qbuf_disconnections: u64,
    /// Connections on the TLS port whose handshake failed or timed out.
    pub tls_handshake_failures: u64,
}

/// The state of one shard: what handlers see through [`crate::command::Ctx`].
pub struct ShardState {
    /// This shard's index.
    pub id: usize,
    /// Number of shards.
    pub nshards: usize,
    /// The keyspace view.
    pub ks: Keyspace,
    /// This shard's copy of the configuration (CONFIG SET updates every shard).
    pub config: Config,
    /// Shared read-only state.
    pub shared: Arc<Shared>,
    /// Connections living on this shard.
    pub clients: BTreeMap<u64, Rc<RefCell<ClientInfo>>>,
    /// Counters.
    pub stats: ShardStats,
    /// Per-command counters and errors by kind.
    pub cmdstats: crate::stats::Stats,
    /// Times commands with one clock read each.
    pub clock: crate::stats::Clock,
    /// This shard's part of the slow log.
    pub slowlog: crate::command::slowlog::SlowLog,
    /// This shard's latency events.
    pub latency: crate::command::latency::Monitor,
    /// Unix seconds of the last successful save (start-up recovery counts).
    pub lastsave: u64,
    /// Bytes and records replayed at start-up, and how long it took.
    pub recovery: RecoveryStats,
    /// Clients blocked on this shard's keys.
    pub blocked: crate::blocking::Waiters,
    /// Queues with a deadline ahead (a delay, a lease, a TTL), settled by the timer.
    pub queue_timers: crate::command::queues::Timers,
    /// Streams with retention, trimmed by the timer as they age.
    pub stream_retention: crate::command::stream_retention::Registry,
    /// Channel and pattern subscriptions of this shard's connections.
    pub pubsub: crate::pubsub::PubSub,
    /// The Lua engine, created by the first script; taken out while a script runs.
    pub lua: Option<Box<crate::scripting::Engine>>,
    /// Checkpoints: the newest one, the one running, counters.
    pub checkpoints: crate::checkpoint::Checkpoints,
    /// Keyspace notifications for the other shards, forwarded in order by one task.
    pub forward: Option<futures::channel::mpsc::UnboundedSender<(Vec<u8>, Vec<u8>)>>,
    /// The time every command of the running transaction sees (Redis freezes
    /// the clock for MULTI/EXEC as for scripts): set only inside a group.
    pub frozen_now: Option<u64>,
    /// A scratch shard running a script whose keys live on several shards:
    /// the (database, key)s it holds, the only ones the script may touch.
    pub held: Option<std::collections::HashSet<(usize, Vec<u8>)>>,
    /// A scratch shard's keyspace notifications, kept for the coordinator
    /// to publish once the writes they describe are applied.
    pub captured: Option<Vec<crate::notify::Event>>,
    /// Keys a script on a scratch shard reached for that it was not given:
    /// the coordinator runs it again holding them too ([`crate::gather::script`]).
    pub wanted: std::collections::HashSet<(usize, Vec<u8>)>,
}

impl ShardState {
    /// A shard state around `ks` with no clients, counters, waiters or timers yet.
    fn around(id: usize, nshards: usize, ks: Keyspace, config: Config, shared: Arc<Shared>) -> ShardState {
        ShardState {
            id,
            nshards,
            ks,
            config,
            shared,
            clients: BTreeMap::new(),
            stats: ShardStats::default(),
            cmdstats: Default::default(),
            clock: Default::default(),
            slowlog: Default::default(),
            latency: Default::default(),
            lastsave: 0,
            recovery: RecoveryStats::default(),
            blocked: Default::default(),
            queue_timers: Default::default(),
            stream_retention: Default::default(),
            pubsub: Default::default(),
            lua: None,
            checkpoints: Default::default(),
            forward: None,
            frozen_now: None,
            held: None,
            captured: None,
            wanted: Default::default(),
        }
    }

    /// An empty shard with this one's configuration, in memory: no log, no
    /// clients, no tasks, no notifications. [`crate::gather`] runs a
    /// command there on copies of values read from several shards.
    pub fn scratch(&self) -> ShardState {
        ShardState::around(self.id, self.nshards, Keyspace::new(None), self.config.clone(), self.shared.clone())
    }

    /// Publishes keyspace notifications: to this shard's subscribers now, to the others in order.
    pub fn publish_events(&mut self, events: &[crate::notify::Event]) {
        if let Some(kept) = &mut self.captured {
            kept.extend_from_slice(events);
            return;
        }
        for (channel, message) in crate::notify::messages(self.config.notify, events) {
            self.pubsub.publish(&channel, &message, &self.config.client_output_buffer_limit);
            if let Some(f) = &self.forward {
                let _ = f.unbounded_send((channel, message));
            }
        }
    }

    /// Publishes what the keyspace recorded by itself (expiry, misses).
    pub fn publish_key_events(&mut self) {
        if self.ks.has_events() {
            let events: Vec<crate::notify::Event> = self.ks.take_events().iter().map(crate::notify::from_key_event).collect();
            self.publish_events(&events);
        }
    }
}

/// Sends this shard's keyspace notifications to every other shard, in order.
async fn forward_events(shard: Rc<crate::dispatch::Shard>, mut rx: futures::channel::mpsc::UnboundedReceiver<(Vec<u8>, Vec<u8>)>) {
    use futures::StreamExt;
    while let Some((channel, message)) = rx.next().await {
        for to in (0..shard.outbox.shards()).filter(|&s| s != shard.id) {
            shard.outbox.send(to, crate::dispatch::Msg::Publish { channel: channel.clone(), message: message.clone() }).await;
        }
    }
}

/// What start-up recovery did on this shard.
#[derive(Debug, Default, Clone)]
pub struct RecoveryStats {
    /// The checkpoint loaded, if any.
    pub checkpoint: Option<strand_engine::checkpoint::Loaded>,
    /// Records replayed.
    pub records: u64,
    /// Log bytes scanned.
    pub bytes: u64,
    /// Time taken.
    pub elapsed: Duration,
}

/// Start-up coordination (state 0: waiting) between the shards and the main thread. Shards
/// report when their recovery is done (or failed); the main thread opens the
/// gate when all have recovered, or closes it when any shard (or its
/// executor) failed, so no shard waits forever for another.
#[derive(Default)]
pub struct StartGate {
    state: std::sync::atomic::AtomicU8,
    reports: std::sync::Mutex<Vec<Option<String>>>,
    cond: std::sync::Condvar,
}

impl StartGate {
    const OPEN: u8 = 1;
    const CLOSED: u8 = 2;

    /// A shard's report: None when it recovered, else why it failed.
    pub fn report(&self, failure: Option<String>) {
        let mut r = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        r.push(failure);
        self.cond.notify_all();
    }

    /// Main thread: waits for `n` reports; Err with the first failure.
    pub fn collect(&self, n: usize, failed: impl Fn() -> Option<String>) -> Result<(), String> {
        let mut r = self.reports.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(Some(e)) = r.iter().find(|x| x.is_some()) {
                return Err(e.clone());
            }
            if let Some(e) = failed() {
                return Err(e);
            }
            if r.len() >= n {
                return Ok(());
            }
            r = self.cond.wait_timeout(r, Duration::from_millis(50)).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Main thread: lets the shards serve (true) or stop (false).
    pub fn open(&self, go: bool) {
        self.state.store(if go { Self::OPEN } else { Self::CLOSED }, Ordering::SeqCst);
    }

    /// Shard: waits until the gate opens (true) or closes (false), without
    /// blocking the executor thread; its heartbeat ticks meanwhile.
    pub async fn wait(&self, heartbeats: &crate::watchdog::Heartbeats, shard: usize) -> bool {
        loop {
            match self.state.load(Ordering::SeqCst) {
                Self::OPEN => return true,
                Self::CLOSED => return false,
                _ => {
                    heartbeats.tick(shard);
                    runtime::sleep(Duration::from_millis(1)).await
                }
            }
        }
    }
}

/// What a shard needs to start.
pub struct ShardStart {
    /// Index of this shard.
    pub id: usize,
    /// Configuration.
    pub config: Config,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Sending half of the bus.
    pub outbox: strand_engine::bus::Outbox<crate::dispatch::Msg>,
    /// Receiving half of the bus.
    pub receiver: strand_engine::bus::Receiver<crate::dispatch::Msg>,
    /// Start-up gate: the shard reports its recovery here and listens only when every shard has recovered.
    pub gate: Arc<StartGate>,
    /// The TLS acceptor, built once at start, when `tls-port` is set.
    pub tls: Option<futures_rustls::TlsAcceptor>,
}

/// Loads the newest checkpoint, replays this shard's log after it into the
/// keyspace, and opens the log for appending.
fn recover(id: usize, config: &Config, skip: &HashSet<u64>) -> Result<Replayed, String> {
    let mut ks = Keyspace::new(None);
    if !config.persistence {
        return Ok(Replayed { ks, stats: RecoveryStats::default(), tx: Recovered::default(), log: None });
    }
    let dir = strand_engine::log::segment::shard_dir(&config.dir, id as u32);
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let t = Instant::now();
    let (base, checkpoint) =
        crate::checkpoint::load_newest(id, &dir, &mut ks).map_err(|e| format!("recovery of shard {id} failed: {e}"))?;
    // Before replay: a record may change a string the checkpoint left cold.
    let tier = strand_engine::tier::Tier::open(&dir, id as u32, config.segment_size)
        .map_err(|e| format!("opening the cold tier of shard {id} in {}: {e}", dir.display()))?;
    ks.set_tier(Some(tier));
    ks.skip_tx(skip.clone());
    let rec = strand_engine::log::recovery::recover(&dir, base, |r| {
        let kind = r.header.kind;
        if strand_engine::keyspace::Op::owns(kind) {
            ks.replay(kind, r.payload, r.header.time_ms()).map_err(|e| e.to_string())
        } else {
            Err(format!("unknown record kind 0x{kind:02x}"))
        }
    })
    .map_err(|e| format!("recovery of shard {id} failed: {e}"))?;
    if let Some(cut) = &rec.cut {
        tracing::warn!(shard = id, file = %cut.file.display(), offset = cut.offset, reason = %cut.reason, discarded_nonzero_bytes = cut.nonzero_bytes,
            "cut a torn tail from the log: records from this offset on were never acknowledged under appendfsync always");
    }
    let mut tx = ks.take_tx_recovered();
    tx.checkpoint_epoch = checkpoint.as_ref().map_or(0, |c| c.tx_epoch);
    let stats = RecoveryStats { checkpoint, records: rec.records, bytes: rec.bytes, elapsed: t.elapsed() };
    tracing::info!(
        shard = id,
        records = rec.records,
        bytes = rec.bytes,
        segments = rec.segments,
        ms = stats.elapsed.as_millis() as u64,
        "log replayed"
    );
    Ok(Replayed { ks, stats, tx, log: Some((dir, rec)) })
}

/// A shard's keyspace after replay, before its log is opened for appending.
struct Replayed {
    ks: Keyspace,
    stats: RecoveryStats,
    tx: Recovered,
    /// The shard's directory and where its log ends (None without persistence).
    log: Option<(std::path::PathBuf, strand_engine::log::recovery::Recovered)>,
}

impl Replayed {
    /// Opens the log for appending after what was replayed.
    fn open(mut self, id: usize, config: &Config) -> (Keyspace, RecoveryStats) {
        if let Some((dir, rec)) = self.log {
            let log = strand_engine::log::Log::start(
                strand_engine::log::LogConfig {
                    dir,
                    shard: id as u32,
                    segment_size: config.segment_size,
                    fsync: config.appendfsync,
                    buffer_size: 64 * 1024,
                },
                &rec,
            );
            self.ks.set_log(Some(log));
        }
        (self.ks, self.stats)
    }
}

/// Recovers this shard, then settles cross-shard transactions with the
/// other shards: when a part's transaction lost a part on another shard in
/// the crash, replays again without it and logs an abort (a TX record) for it.
async fn recover_whole(id: usize, config: &Config, shared: &Shared) -> Result<(Keyspace, RecoveryStats), String> {
    let first = recover(id, config, &HashSet::new());
    let all = shared.tx.settle(id, first.as_ref().ok().map(|r| r.tx.clone()), &shared.heartbeats).await;
    let first = first?;
    let Some(all) = all else { return Err(format!("shard {id}: another shard failed to recover")) };
    let dropped = strand_engine::keyspace::tx::incomplete(id, &all);
    if dropped.is_empty() {
        return Ok(first.open(id, config));
    }
    let found = first.tx;
    drop(first.ks);
    tracing::warn!(
        shard = id,
        transactions = dropped.len(),
        "replaying again without the parts of cross-shard transactions that lost a part on another shard in the crash"
    );
    let (mut ks, stats) = recover(id, config, &dropped)?.open(id, config);
    let now = ks.now();
    let new_aborts: Vec<u64> = found.parts.iter().map(|p| p.id).filter(|t| dropped.contains(t) && !found.aborts.contains(t)).collect();
    for t in new_aborts {
        ks.log_tx_abort(t, now).map_err(|e| format!("shard {id}: logging a transaction abort failed: {e}"))?;
    }
    if let Some(log) = ks.log().cloned() {
        log.sync_all().await.map_err(|e| format!("shard {id}: syncing transaction aborts failed: {e}"))?;
    }
    Ok((ks, stats))
}

/// Runs one shard until shutdown.
pub async fn run(start: ShardStart) -> Result<(), String> {
    let ShardStart { id, config, shared, outbox, receiver, gate, tls } = start;
    shared.heartbeats.register(id);
    if config.persistence {
        let dir = strand_engine::log::segment::shard_dir(&config.dir, id as u32);
        let settled = match std::fs::create_dir_all(&dir) {
            Ok(()) => strand_engine::runtime::settle_polling(&dir).await,
            Err(e) => Err(e),
        };
        if let Err(e) = settled {
            tracing::warn!(shard = id, dir = %dir.display(), error = %e, "could not probe the disk for polled I/O; glommio will probe on the first log file");
        }
    }
    let result = recover_whole(id, &config, &shared).await;
    gate.report(result.as_ref().err().cloned());
    let (mut ks, recovery) = result?;
    ks.set_capture(crate::notify::capture(config.notify));
    let nshards = shared.slots.shards();
    ks.set_limits(config.memory_limits(nshards));
    if !gate.wait(&shared.heartbeats, id).await {
        return Ok(());
    }
    let stream_retention = crate::command::stream_retention::Registry::rebuild(&ks, strand_engine::clock::unix_ms());
    let state = ShardState {
        lastsave: recovery.checkpoint.as_ref().map_or(strand_engine::clock::unix_ms(), |c| c.time_ms) / 1000,
        checkpoints: crate::checkpoint::Checkpoints::started(&recovery),
        recovery,
        stream_retention,
        ..ShardState::around(id, nshards, ks, config.clone(), shared.clone())
    };
    let shard =
        Rc::new(crate::dispatch::Shard { state: RefCell::new(state), outbox, id, shared: shared.clone(), locks: Default::default() });
    let bus_queue = runtime::latency_queue("bus", Duration::from_millis(1));
    let receiver_shard = shard.clone();
    runtime::spawn_into(receive(receiver_shard, receiver), bus_queue)?;
    runtime::spawn(expire(shard.clone()));
    runtime::spawn(search_background(shard.clone()));
    runtime::spawn(crate::limits::sweep(shard.clone()));
    crate::checkpoint::spawn(crate::checkpoint::auto(shard.clone()));
    let (forward, events) = futures::channel::mpsc::unbounded();
    shard.state.borrow_mut().forward = Some(forward);
    runtime::spawn(forward_events(shard.clone(), events));
    listen(&shard, &config, tls)?;
    if id == 0 && config.metrics_port != 0 {
        let metrics = crate::metrics::bind(&config.bind, config.metrics_port)?;
        tracing::info!(bind = %config.bind, port = config.metrics_port, "serving Prometheus metrics at /metrics");
        runtime::spawn(crate::metrics::serve(shard.clone(), metrics));
    }
    while !shared.shutdown.load(Ordering::SeqCst) {
        runtime::sleep(Duration::from_millis(20)).await;
        shared.heartbeats.tick(id);
        let failed = shard.state.borrow().ks.log().is_some_and(|l| l.check_writable().is_err());
        let bit = 1u64 << (id % 64);
        if failed {
            shared.logs_failed.fetch_or(bit, Ordering::SeqCst);
        } else {
            shared.logs_failed.fetch_and(!bit, Ordering::SeqCst);
        }
    }
    let log = shard.state.borrow().ks.log().cloned();
    if log.is_some() && shared.shutdown_save.load(Ordering::SeqCst) {
        crate::checkpoint::save(&shard).await.map_err(|e| format!("shard {id}: checkpoint at shutdown failed: {e}"))?;
    }
    if let Some(log) = log {
        log.sync_all().await.map_err(|e| format!("shard {id}: final sync failed: {e}"))?;
    }
    tracing::info!(shard = id, "log synced; shard stopped");
    Ok(())
}

/// Binds the plaintext port and the TLS port (each unless 0) and accepts on them.
fn listen(shard: &Rc<crate::dispatch::Shard>, config: &Config, tls: Option<futures_rustls::TlsAcceptor>) -> Result<(), String> {
    let id = shard.id;
    let bind = |port: u16| {
        runtime::TcpListener::bind((config.bind.as_str(), port))
            .map_err(|e| format!("shard {id}: cannot listen on {}:{port}: {e}", config.bind))
    };
    if config.port != 0 {
        runtime::spawn(accept(shard.clone(), bind(config.port)?, None));
    }
    if let (Some(acceptor), true) = (tls, config.tls_port != 0) {
        runtime::spawn(accept(shard.clone(), bind(config.tls_port)?, Some(acceptor)));
    }
    if id == 0 {
        tracing::info!(bind = %config.bind, port = config.port, tls_port = config.tls_port, shards = shard.state.borrow().nshards, "ready to accept connections");
    }
    Ok(())
}

/// Accepts connections on one port; `tls` is set on the TLS port.
async fn accept(shard: Rc<crate::dispatch::Shard>, listener: runtime::TcpListener, tls: Option<futures_rustls::TlsAcceptor>) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let (shared, max) = {
                    let st = shard.state.borrow();
                    (st.shared.clone(), st.config.maxclients as u64)
                };
                let before = shared.clients.fetch_add(1, Ordering::Relaxed);
                shard.state.borrow_mut().stats.connections += 1;
                if before >= max {
                    shared.clients.fetch_sub(1, Ordering::Relaxed);
                    shard.state.borrow_mut().stats.rejected += 1;
                    // On the TLS port a plaintext error would be noise to the client: just close.
                    if tls.is_none() {
                        runtime::spawn(refuse(stream));
                    }
                    continue;
                }
                match &tls {
                    None => runtime::spawn(crate::conn::serve(shard.clone(), stream)),
                    Some(acceptor) => runtime::spawn(crate::tls::serve(shard.clone(), acceptor.clone(), stream)),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                runtime::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Tells a client over maxclients why, and closes it.
async fn refuse(mut stream: runtime::TcpStream) {
    use futures::AsyncWriteExt;
    let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
    let _ = stream.close().await;
}

async fn receive(shard: Rc<crate::dispatch::Shard>, mut rx: strand_engine::bus::Receiver<crate::dispatch::Msg>) {
    loop {
        let (_, msg) = rx.recv().await;
        shard.serve(msg);
        // Drain what else is waiting before yielding back to the scheduler.
        while let Some((_, msg)) = rx.try_recv() {
            shard.serve(msg);
        }
    }
}

/// Search indexes' background work, a slice at a time between requests:
/// indexing the keys that existed when an index was defined (FT.INFO shows
/// `indexing` and `percent_indexed`), then cleaning dead postings and
/// renumbering ids (FT.INFO `cleaning`; see `strand_engine::search::clean`).
async fn search_background(shard: Rc<crate::dispatch::Shard>) {
    /// Keys a scan slice visits.
    const SCAN_SLICE: usize = 1_000;
    /// Postings a cleaning slice reads (about a millisecond).
    const CLEAN_SLICE: usize = 50_000;
    loop {
        runtime::sleep(Duration::from_millis(10)).await;
        loop {
            let more = {
                let mut st = shard.state.borrow_mut();
                let now = st.ks.now();
                st.ks.search_scan_step(now, SCAN_SLICE) || st.ks.search_clean_step(CLEAN_SLICE)
            };
            if !more {
                break;
            }
            runtime::yield_if_needed().await;
        }
    }
}

/// Active expiry: every 100 ms, remove keys whose deadline passed, in slices that never hold the shard long.
async fn expire(shard: Rc<crate::dispatch::Shard>) {
    const SLICE: usize = 2_000;
    loop {
        runtime::sleep(Duration::from_millis(100)).await;
        // Blocked clients whose connection went away, so they do not wait for a write forever.
        shard.drop_abandoned_waiters();
        loop {
            let done = {
                let mut st = shard.state.borrow_mut();
                let now = st.ks.now();
                let done = st.ks.expire_cycle(now, SLICE);
                crate::command::latency::record_sync_peak(&mut st, now);
                // Eviction left unfinished by commands (bounded per command) goes on here.
                if st.ks.over_budget() {
                    st.ks.make_room(now);
                }
                st.publish_key_events();
                done
            };
            // Queues whose delays, leases or TTLs ran out: log it, and serve waiting consumers.
            let settled = {
                let mut st = shard.state.borrow_mut();
                let now = st.ks.now();
                crate::command::queues::tick(&mut st, now)
            };
            if settled {
                shard.serve_ready();
            }
            // Streams whose oldest entries outlived their retention.
            {
                let mut st = shard.state.borrow_mut();
                let now = st.ks.now();
                crate::command::stream_retention::tick(&mut st, now);
            }
            if done < SLICE {
                break;
            }
            runtime::yield_if_needed().await;
        }
    }
}
