//! The strand server: RESP codec, connections, command table, config.
//!
//! Map: [`config`] (flags and file) → [`shard`] (one per core: recovery,
//! listener, bus receiver, expiry) → [`conn`] (a connection: read, parse
//! with [`resp`], reply) → [`dispatch`] (route by key to the owning shard,
//! batch per shard, merge) → [`command`] (the table and the handlers, which
//! call the engine's views). Beside the batch path: [`blocking`] (clients
//! parked on keys, BLPOP and kin), [`transaction`] (MULTI/EXEC/WATCH),
//! [`coordinator`] (MSET, MSETNX and EXEC across shards, fenced in shard order) and
//! [`pubsub`] (subscribers of this shard's connections), [`notify`]
//! (keyspace notifications) and [`scripting`] (the Lua engine of EVAL);
//! [`checkpoint`] (loading, taking and pruning checkpoints of a shard);
//! [`metrics`] (Prometheus text on `--metrics-port`, served by shard 0);
//! [`watchdog`] (wakes a shard whose executor slept through its timers);
//! [`acl`] (users, passwords and permissions, checked per command by [`conn`]);
//! [`stats`] (per-command counters and errors by kind, for INFO and metrics);
//! [`limits`] (output buffer limits and the idle timeout, which close one client);
//! [`tls`] (the TLS port: rustls set-up and the handshake before [`conn`]).
//! The binary in `main.rs` only starts shards.

pub mod acl;
pub mod blocking;
pub mod checkpoint;
pub mod command;
pub mod config;
pub mod conn;
pub mod coordinator;
pub mod dispatch;
pub mod gather;
pub mod info;
pub mod limits;
pub mod metrics;
pub mod moves;
pub mod notify;
pub mod oom;
pub mod pops;
pub mod pubsub;
pub mod reply;
pub mod resp;
pub mod scripting;
pub mod shard;
pub mod stats;
pub mod stream_reads;
pub mod tiering;
pub mod tls;
pub mod transaction;
pub mod watchdog;
