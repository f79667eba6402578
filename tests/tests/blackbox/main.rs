//! The black-box suite: every test starts the real `strand` binary on a
//! free port with a temporary `--dir` (see `strand_tests::Server`) and
//! talks to it with real clients. One module per area of the server.
//!
//! All of it is one test binary on purpose: each binary costs CI a
//! release link, and one process also keeps `free_port` from handing the
//! same port to two tests. Run one area with
//! `cargo test --release -p strand-tests --test blackbox -- queues::`.

mod acl;
mod bench;
mod checkpoints;
mod crash;
mod cross_shard;
mod durability;
mod errors;
mod fuzz;
mod fuzz_commands;
mod gather;
mod hashes;
mod keys;
mod limits;
mod lists;
mod lists_blocking;
mod memory;
mod metrics;
mod moves;
mod notifications;
mod observability;
mod pipeline;
mod pops;
mod protocol;
mod pubsub;
mod queues;
mod scripting;
mod search;
mod server;
mod sets;
mod storage_faults;
mod stream_idmp;
mod stream_reads;
mod stream_retention;
mod streams;
mod strings;
mod tiering;
mod timeseries;
mod tls;
mod transactions;
mod zsets;
