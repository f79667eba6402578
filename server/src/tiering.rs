//! Cold values at the door: the keys a command names are read back from
//! the shard's cold tier before it runs (the `tiered` policy; see
//! `strand_engine::keyspace::cold`).
//!
//! Two paths, so that a cold read never stalls the shard's other clients:
//! - [`cold_keys`] + [`warm`]: a connection finds that a command names
//!   cold keys of its own shard, leaves the command in its buffer, awaits
//!   the reads (io_uring, all keys at once), and reads the command again,
//!   as it does for a key locked by a cross-shard transaction. A batch
//!   from another shard naming cold keys is warmed the same way before it
//!   runs ([`crate::dispatch::Shard::serve`]).
//! - [`resident`]: right before the handler runs, whatever is still cold
//!   (evicted again in between, or a path that cannot wait: MULTI/EXEC,
//!   scripts, blocked commands) is read with a blocking `pread`. This is the
//!   guarantee; the first path is the speed.

use crate::command::Command;
use crate::dispatch::Shard;
use crate::reply::Reply;
use crate::shard::ShardState;

/// Commands that never read the bytes of the strings they name (they
/// replace or delete them, or look at their type or TTL): a cold value
/// stays cold for them. (RENAME, MOVE and COPY read it: a tier record is
/// checked against its key and database.) SET with its GET option reads.
fn reads_values(cmd: &Command, args: &[&[u8]]) -> bool {
    if cmd.name == "set" {
        return args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
    }
    !matches!(
        cmd.name,
        "setex"
            | "psetex"
            | "setnx"
            | "del"
            | "unlink"
            | "exists"
            | "type"
            | "ttl"
            | "pttl"
            | "expiretime"
            | "pexpiretime"
            | "expire"
            | "pexpire"
            | "expireat"
            | "pexpireat"
            | "persist"
            | "mset"
            | "msetnx"
    )
}

/// The keys of `args` (run as `cmd` in `db`) that are cold on this shard.
pub fn cold_keys(st: &ShardState, cmd: &Command, db: usize, args: &[&[u8]]) -> Vec<(Vec<u8>, strand_engine::tier::ColdRef)> {
    if st.ks.cold_keys_in(db) == 0 || !reads_values(cmd, args) {
        return Vec::new();
    }
    let keys = cmd.keys_of(args).filter_map(|i| args.get(i).copied());
    st.ks.cold_refs(db, keys).into_iter().map(|(k, r)| (k.to_vec(), r)).collect()
}

/// Reads `keys` back from the tier, all at once, and puts them back in
/// memory (unless they changed meanwhile). A failed read is logged; the
/// command then meets it again in [`resident`], which answers the error.
pub async fn warm(shard: &Shard, db: usize, keys: Vec<(Vec<u8>, strand_engine::tier::ColdRef)>) {
    let Some(tier) = shard.state.borrow().ks.tier().cloned() else { return };
    let reads = keys.iter().map(|(k, r)| tier.read(*r, k));
    let values = futures::future::join_all(reads).await;
    let mut st = shard.state.borrow_mut();
    let now = st.ks.now();
    for ((key, r), value) in keys.iter().zip(values) {
        match value {
            Ok(v) => {
                st.ks.install(db, key, *r, &v);
                st.ks.touch(db, key, now);
            }
            Err(e) => tracing::warn!(shard = shard.id, db, key = %String::from_utf8_lossy(key), error = %e, "cold read failed"),
        }
    }
}

/// Makes the keys a command names resident now (blocking reads); the
/// error reply if one cannot be read. `cmd` None: looked up from `args`.
pub fn resident(st: &mut ShardState, cmd: Option<&Command>, db: usize, args: &[&[u8]]) -> Option<Reply> {
    if st.ks.cold_keys_in(db) == 0 {
        return None;
    }
    let cmd = cmd.or_else(|| crate::command::lookup(args)).filter(|c| reads_values(c, args))?;
    for i in cmd.keys_of(args) {
        let Some(key) = args.get(i) else { continue };
        if let Err(e) = st.ks.make_resident(db, key) {
            let key = String::from_utf8_lossy(key);
            tracing::error!(db, key = %key, error = %e, "cold value could not be read back");
            return Some(Reply::error(format!("ERR the value of key '{key}' could not be read from the cold tier: {e}")));
        }
    }
    None
}

thread_local! {
    /// Whether this shard compacts its tier now (one pass at a time).
    static COMPACTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Moves the live records of sparse tier segments to the tier's head, in
/// the background (the checkpoint's task queue); the next two checkpoints
/// then let the files go. See `strand_engine::tier`.
pub fn compact(shard: &std::rc::Rc<Shard>, segments: Vec<u32>) {
    if segments.is_empty() || COMPACTING.with(|c| c.replace(true)) {
        return;
    }
    let shard = shard.clone();
    crate::checkpoint::spawn(async move {
        for seg in segments {
            if let Err(e) = compact_segment(&shard, seg).await {
                tracing::error!(shard = shard.id, seg, error = %e, "cold tier compaction stopped");
                break;
            }
        }
        COMPACTING.with(|c| c.set(false));
    });
}

async fn compact_segment(shard: &Shard, seg: u32) -> Result<(), strand_engine::tier::TierError> {
    let Some(tier) = shard.state.borrow().ks.tier().cloned() else { return Ok(()) };
    let mut records = Vec::new();
    tier.scan_segment(seg, |r| records.push(r)).await?;
    let mut moved = 0u64;
    for rec in &records {
        loop {
            let result = shard.state.borrow_mut().ks.move_record(rec);
            match result {
                Ok(m) => {
                    moved += u64::from(m);
                    break;
                }
                Err(strand_engine::tier::TierError::Busy) => tier.wait_room().await,
                Err(e) => return Err(e),
            }
        }
        strand_engine::runtime::yield_if_needed().await;
    }
    tracing::info!(shard = shard.id, seg, records = records.len(), moved, "cold tier segment compacted");
    Ok(())
}
