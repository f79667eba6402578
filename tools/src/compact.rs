//! `compact`: offline compaction of a stopped server's data directory. Per
//! shard it builds the keyspace at the end of the log (newest checkpoint plus
//! the log after it, as start-up does), writes a checkpoint at the last LSN
//! with the engine's own checkpoint writer, then removes what the server's
//! compaction (`strand_server::checkpoint::prune`) would remove after that
//! checkpoint: every checkpoint but the two newest, and the segments whose
//! records the older of those two holds; the newest segment always stays,
//! since the log continues in it. It holds `DIR/LOCK` (flock) throughout, so
//! it refuses to run while a server uses the directory, and no server starts
//! on it meanwhile.
//!
//! The checkpoint writer writes with O_DIRECT through the runtime's
//! `DmaFile`, which needs a glommio executor: compaction runs inside one
//! `LocalExecutor` on the calling thread.

use std::path::{Path, PathBuf};

use strand_engine::checkpoint;

use crate::progress::{human, Progress};
use crate::{EXIT_CLEAN, EXIT_DAMAGED};

/// Most bytes of encoded entries per checkpoint chunk (as the server).
const SLICE: usize = 1 << 20;

/// Takes `DIR/LOCK` as the server does (`lock_dir` in server/src/main.rs).
fn lock(dir: &Path) -> Result<std::fs::File, String> {
    let path = dir.join("LOCK");
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(format!(
            "{} is in use: the lock on {} is held (a strand server runs on it; stop it first, compact works offline)",
            dir.display(),
            path.display()
        ));
    }
    Ok(file)
}

/// Bytes of segment and checkpoint files in a shard directory.
fn disk_bytes(dir: &Path) -> u64 {
    let segs: u64 = strand_engine::log::segment::list_segments(dir)
        .unwrap_or_default()
        .iter()
        .map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let ckps: u64 = checkpoint::list(dir).unwrap_or_default().iter().map(|(_, p)| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    segs + ckps
}

/// Runs `compact` on the shards of `root`.
pub fn compact(root: &Path, shards: &[(u32, PathBuf)]) -> u8 {
    let _lock = match lock(root) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("strand-tools: compact: {e}");
            return EXIT_DAMAGED;
        }
    };
    let ex = match glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).name("compact").make() {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("strand-tools: compact: cannot start an I/O executor (io_uring): {e}");
            return EXIT_DAMAGED;
        }
    };
    ex.run(async {
        let (mut before, mut after) = (0u64, 0u64);
        let mut worst = EXIT_CLEAN;
        for (n, dir) in shards {
            let b = disk_bytes(dir);
            before += b;
            let code = match shard(*n, dir).await {
                Ok(()) => EXIT_CLEAN,
                Err(e) => {
                    println!("shard-{n:03}: FAILED: {e}");
                    EXIT_DAMAGED
                }
            };
            worst = worst.max(code);
            let a = disk_bytes(dir);
            after += a;
            println!("shard-{n:03}: disk {} ({b} B) -> {} ({a} B)", human(b), human(a));
        }
        println!("total: disk {} ({before} B) -> {} ({after} B)", human(before), human(after));
        worst
    })
}

/// Compacts one shard.
async fn shard(n: u32, dir: &Path) -> Result<(), String> {
    let mut state = crate::state::load(n, dir)?;
    if let Some((path, e)) = state.damaged.first() {
        return Err(format!(
            "checkpoint {} is damaged ({e}); refusing to compact: start the server once (it sets damaged checkpoints aside) or move it aside",
            path.display()
        ));
    }
    // Whether a cross-shard transaction's part is kept depends on the other
    // shards' logs too: the server settles that at start-up, this tool does not.
    let parts = state.ks.take_tx_recovered().parts.len();
    if parts > 0 {
        return Err(format!(
            "the log holds {parts} parts of cross-shard transactions, which only the server can settle; start the server and stop it with SHUTDOWN (it checkpoints every shard), then compact"
        ));
    }
    let lsn = state.rec.next_lsn - 1;
    let previous = state.checkpoint.as_ref().map_or(0, |c| c.lsn);
    if lsn == 0 {
        println!("shard-{n:03}: nothing to do: the log is empty");
        return Ok(());
    }
    if previous == lsn {
        println!("shard-{n:03}: nothing to do: checkpoint {} already holds the log up to LSN {lsn}", checkpoint_name(&state));
        return Ok(());
    }
    // The records the checkpoint vouches for must be durable before it is.
    for (_, path) in strand_engine::log::segment::list_segments(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(|e| format!("fsync {}: {e}", path.display()))?;
    }
    let total: u64 = (0..strand_engine::keyspace::DATABASES).map(|db| state.ks.dbsize(db) as u64).sum();
    let time_ms = state.ks.now();
    // Epoch 0 is safe: the replayed log held no cross-shard transaction parts.
    let mut w = checkpoint::Writer::create(dir, n, lsn, time_ms, 0).await?.compression(1);
    let mut progress = Progress::items(format!("shard-{n:03} checkpoint"), total);
    state.ks.snapshot_begin();
    let mut entries = 0u64;
    let written = loop {
        let done = state.ks.snapshot_step(SLICE);
        let (bytes, count) = state.ks.snapshot_take();
        entries += u64::from(count);
        progress.set(entries);
        if let Err(e) = w.chunk(&bytes, count).await {
            break Err(e);
        }
        if done {
            break Ok(());
        }
    };
    state.ks.snapshot_end();
    progress.finish();
    if let Err(e) = written {
        w.abandon().await;
        return Err(e);
    }
    let (path, size) = w.finish().await?;
    println!("shard-{n:03}: wrote checkpoint {} at LSN {lsn}: {entries} entries, {size} B", path.display());
    prune(n, dir, previous, &state.rec.segments_found)
}

fn checkpoint_name(state: &crate::state::State) -> String {
    state.checkpoint.as_ref().map(|c| c.path.display().to_string()).unwrap_or_default()
}

/// What the server's `prune` does after a checkpoint: keeps the two newest
/// checkpoints, and removes the segments whose records all have LSNs up to
/// `previous` (the older of the two), never the newest segment
/// (`Log::remove_through` over the segments recovery found).
fn prune(n: u32, dir: &Path, previous: u64, segments: &[(u64, u64)]) -> Result<(), String> {
    let list = checkpoint::list(dir).map_err(|e| format!("listing checkpoints in {}: {e}", dir.display()))?;
    for (_, path) in list.iter().skip(2) {
        std::fs::remove_file(path).map_err(|e| format!("removing {}: {e}", path.display()))?;
        println!("shard-{n:03}: removed old checkpoint {}", path.display());
    }
    let mut removed = 0;
    if previous > 0 {
        // A segment holds LSNs up to its successor's first LSN - 1.
        let mut i = 0;
        while segments.len() - i >= 2 && segments[i + 1].1 <= previous + 1 {
            let path = strand_engine::log::segment::segment_path(dir, segments[i].0);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("removing {}: {e}", path.display())),
                _ => {}
            }
            println!("shard-{n:03}: removed segment {} (held by checkpoint LSN {previous})", path.display());
            removed += 1;
            i += 1;
        }
    }
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("fsync directory {}: {e}", dir.display()))?;
    if previous > 0 {
        println!(
            "shard-{n:03}: removed {removed} segment(s); kept the segments after LSN {previous} as the fallback should the new checkpoint be damaged (as the server does)"
        );
    } else {
        println!("shard-{n:03}: kept every segment: there was no older checkpoint to fall back on (as the server does); the next checkpoint, taken by the server or by compact after more writes, removes them");
    }
    Ok(())
}
