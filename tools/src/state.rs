//! A shard's keyspace as of the end of its log, built offline and read-only:
//! the newest checkpoint that verifies, then the log after it, replayed the
//! way the server's start-up does (`strand_server::shard::recover` with
//! `strand_server::checkpoint::load_newest`). Unlike the server, a damaged
//! checkpoint is only reported, never renamed: `stats` must not change the
//! directory, and `compact` refuses to run on one.

use std::path::{Path, PathBuf};

use strand_engine::checkpoint::{self, Loaded};
use strand_engine::keyspace::{Keyspace, Op};
use strand_engine::log::recovery::{self, Base, Recovered};

use crate::progress::{Progress, SegmentPosition};

/// What loading a shard found.
pub struct State {
    /// The keyspace at the end of the log.
    pub ks: Keyspace,
    /// The checkpoint it started from, if any.
    pub checkpoint: Option<Loaded>,
    /// What the replay of the log after it found.
    pub rec: Recovered,
    /// Checkpoints newer than the one used that failed to verify: `(path, error)`.
    pub damaged: Vec<(PathBuf, String)>,
}

/// Loads shard `n` from `dir` (the `shard-NNN` directory). Errors name the file and offset.
pub fn load(n: u32, dir: &Path) -> Result<State, String> {
    let list = checkpoint::list(dir).map_err(|e| format!("listing checkpoints in {}: {e}", dir.display()))?;
    let mut damaged = Vec::new();
    let mut ks = Keyspace::new(None);
    let mut base = Base::Empty;
    let mut used = None;
    for (lsn, path) in list {
        let mut fresh = Keyspace::new(None);
        let mut progress = Progress::new(format!("shard-{n:03} checkpoint"), std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0));
        let mut read = 0u64;
        let result = checkpoint::load(&path, |c| {
            read += c.payload.len() as u64 + 16;
            progress.set(read);
            fresh.load_snapshot_chunk(c.payload, c.entries, c.time_ms).map_err(|e| e.to_string())
        });
        progress.finish();
        match result {
            Ok(loaded) => {
                ks = fresh;
                base = Base::Checkpoint(lsn);
                used = Some(loaded);
                break;
            }
            Err(e) => damaged.push((path, e.to_string())),
        }
    }
    // Replay may change strings the checkpoint left in the cold tier: they are read from there.
    let tier = strand_engine::tier::Tier::open(dir, n, strand_engine::tier::MAX_SEGMENT_SIZE as u64)
        .map_err(|e| format!("opening the cold tier in {}: {e}", dir.display()))?;
    ks.set_tier(Some(tier));
    let mut pos = SegmentPosition::new(dir);
    let mut progress = Progress::new(format!("shard-{n:03} replay"), pos.total());
    let rec = recovery::recover(dir, base, |r| {
        progress.set(pos.done(r.path, r.offset));
        let kind = r.header.kind;
        if Op::owns(kind) {
            ks.replay(kind, r.payload, r.header.time_ms()).map_err(|e| e.to_string())
        } else {
            Err(format!("unknown record kind 0x{kind:02x}"))
        }
    })
    .map_err(|e| crate::describe(&e))?;
    progress.finish();
    Ok(State { ks, checkpoint: used, rec, damaged })
}
