//! `stats`: what a data directory holds, read-only. Per shard: the segment
//! files (size, LSN range), the checkpoints (LSN, entries, size), records
//! and record bytes per kind over the whole log, and keys per database and
//! per type as of the end of the log (newest checkpoint plus the log after
//! it, as the server's start-up builds it), with the keyspace's
//! `used_memory` against the bytes on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value as Json};
use strand_engine::keyspace::DATABASES;
use strand_engine::log::record::HEADER_LEN;
use strand_engine::log::recovery::{self, Base};
use strand_engine::log::segment;

use crate::progress::{human, Progress, SegmentPosition};
use crate::{describe, kind_name, read_header, EXIT_CLEAN, EXIT_DAMAGED};

/// One segment file.
struct Seg {
    file: PathBuf,
    bytes: u64,
    first_lsn: Option<u64>,
    /// First and last LSN of the records read from it.
    lsns: Option<(u64, u64)>,
}

/// Records and bytes (header plus payload) of one kind.
#[derive(Default, Clone, Copy)]
struct Count {
    records: u64,
    bytes: u64,
}

/// Runs `stats` over the shards; prints text or, with `json`, one JSON document.
pub fn stats(shards: &[(u32, PathBuf)], json: bool) -> u8 {
    let mut worst = EXIT_CLEAN;
    let mut docs = Vec::new();
    for (n, dir) in shards {
        let (doc, code) = shard(*n, dir);
        worst = worst.max(code);
        if !json {
            print_text(&doc);
        }
        docs.push(doc);
    }
    let total = totals(&docs);
    if json {
        let doc = json!({ "shards": docs, "total": total });
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("strand-tools: {e}");
                return EXIT_DAMAGED;
            }
        }
    } else {
        println!(
            "total: {} shards, {} keys, {} records, disk {} ({} B), live {} ({} B), live/disk {:.3}",
            docs.len(),
            total["keys"],
            total["records"],
            human(total["disk_bytes"].as_u64().unwrap_or(0)),
            total["disk_bytes"],
            human(total["live_bytes"].as_u64().unwrap_or(0)),
            total["live_bytes"],
            total["live_ratio"].as_f64().unwrap_or(0.0)
        );
    }
    worst
}

fn totals(docs: &[Json]) -> Json {
    let sum = |field: &str| docs.iter().map(|d| d[field].as_u64().unwrap_or(0)).sum::<u64>();
    let (disk, live) = (sum("disk_bytes"), sum("live_bytes"));
    json!({
        "keys": sum("keys"),
        "records": sum("records"),
        "disk_bytes": disk,
        "live_bytes": live,
        "live_ratio": ratio(live, disk),
    })
}

fn ratio(live: u64, disk: u64) -> f64 {
    if disk == 0 {
        0.0
    } else {
        live as f64 / disk as f64
    }
}

/// The stats of one shard as JSON, and its exit code.
fn shard(n: u32, dir: &Path) -> (Json, u8) {
    let mut errors: Vec<String> = Vec::new();
    // Segments, and records per kind over the whole log.
    let list = segment::list_segments(dir).unwrap_or_else(|e| {
        errors.push(format!("{}: {e}", dir.display()));
        Vec::new()
    });
    let mut segs: Vec<Seg> = list
        .into_iter()
        .map(|(_, file)| {
            let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let first_lsn = read_header(&file).ok().map(|h| h.first_lsn.get());
            Seg { file, bytes, first_lsn, lsns: None }
        })
        .collect();
    let mut kinds: BTreeMap<u8, Count> = BTreeMap::new();
    let mut pos = SegmentPosition::new(dir);
    let mut progress = Progress::new(format!("shard-{n:03} scan"), pos.total());
    let mut at = 0usize;
    let scanned = recovery::recover(dir, Base::Any, |r| {
        progress.set(pos.done(r.path, r.offset));
        let c = kinds.entry(r.header.kind).or_default();
        c.records += 1;
        c.bytes += (HEADER_LEN + r.payload.len()) as u64;
        while at < segs.len() && segs[at].file != r.path {
            at += 1;
        }
        if let Some(s) = segs.get_mut(at) {
            let lsn = r.header.lsn();
            s.lsns = Some(s.lsns.map_or((lsn, lsn), |(lo, _)| (lo, lsn)));
        }
        Ok(())
    });
    progress.finish();
    let records = match &scanned {
        Ok(r) => r.records,
        Err(e) => {
            errors.push(describe(e));
            kinds.values().map(|c| c.records).sum()
        }
    };
    let seg_bytes: u64 = segs.iter().map(|s| s.bytes).sum();
    // Checkpoints: verified chunk by chunk, entries counted (not decoded here).
    let mut ckp_bytes = 0u64;
    let mut checkpoints = Vec::new();
    for (lsn, path) in strand_engine::checkpoint::list(dir).unwrap_or_default() {
        let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        ckp_bytes += bytes;
        let verified = strand_engine::checkpoint::load(&path, |_| Ok(()));
        checkpoints.push(match verified {
            Ok(l) => json!({ "file": path.display().to_string(), "lsn": lsn, "entries": l.entries, "bytes": bytes, "ok": true }),
            Err(e) => json!({ "file": path.display().to_string(), "lsn": lsn, "bytes": bytes, "ok": false, "error": e.to_string() }),
        });
    }
    // The keyspace at the end of the log.
    let mut keys = 0u64;
    let mut expired = 0u64;
    let mut live_bytes = 0u64;
    let mut per_db = Vec::new();
    let mut end_lsn = None;
    match crate::state::load(n, dir) {
        Ok(state) => {
            let now = strand_engine::clock::unix_ms();
            for db in 0..DATABASES {
                let mut types: BTreeMap<&'static str, u64> = BTreeMap::new();
                let mut live = 0u64;
                state.ks.for_each(db, now, |_, e| {
                    *types.entry(e.value.type_name()).or_default() += 1;
                    live += 1;
                });
                let size = state.ks.dbsize(db) as u64;
                if size > 0 {
                    per_db.push(json!({ "db": db, "keys": live, "expired": size - live, "types": types }));
                }
                keys += live;
                expired += size - live;
            }
            live_bytes = state.ks.used_memory() as u64;
            end_lsn = Some(state.rec.next_lsn - 1);
        }
        Err(e) => errors.push(e),
    }
    let disk = seg_bytes + ckp_bytes;
    let code = if errors.is_empty() { EXIT_CLEAN } else { EXIT_DAMAGED };
    let doc = json!({
        "shard": n,
        "dir": dir.display().to_string(),
        "segments": segs.iter().map(|s| json!({
            "file": s.file.display().to_string(),
            "bytes": s.bytes,
            "first_lsn": s.first_lsn,
            "lsn_range": s.lsns.map(|(lo, hi)| [lo, hi]),
        })).collect::<Vec<_>>(),
        "segment_bytes": seg_bytes,
        "checkpoints": checkpoints,
        "checkpoint_bytes": ckp_bytes,
        "records": records,
        "kinds": kinds.iter().map(|(k, c)| (kind_name(*k), json!({ "records": c.records, "bytes": c.bytes }))).collect::<serde_json::Map<_, _>>(),
        "end_lsn": end_lsn,
        "keys": keys,
        "expired": expired,
        "databases": per_db,
        "live_bytes": live_bytes,
        "disk_bytes": disk,
        "live_ratio": ratio(live_bytes, disk),
        "errors": errors,
    });
    (doc, code)
}

fn print_text(d: &Json) {
    let n = d["shard"].as_u64().unwrap_or(0);
    let p = format!("shard-{n:03}:");
    let segs = d["segments"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    println!("{p} {} segments, {} ({} B)", segs.len(), human(d["segment_bytes"].as_u64().unwrap_or(0)), d["segment_bytes"]);
    for s in segs {
        let range = match s["lsn_range"].as_array() {
            Some(r) if r.len() == 2 => format!("LSN {}..={}", r[0], r[1]),
            _ => "no records".to_string(),
        };
        println!("{p}   segment {} {} B {range}", s["file"].as_str().unwrap_or(""), s["bytes"]);
    }
    for c in d["checkpoints"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        if c["ok"].as_bool() == Some(true) {
            println!("{p}   checkpoint {} LSN {} {} entries {} B", c["file"].as_str().unwrap_or(""), c["lsn"], c["entries"], c["bytes"]);
        } else {
            println!(
                "{p}   checkpoint {} LSN {} {} B DAMAGED: {}",
                c["file"].as_str().unwrap_or(""),
                c["lsn"],
                c["bytes"],
                c["error"].as_str().unwrap_or("")
            );
        }
    }
    println!("{p} {} records", d["records"]);
    println!("{p}   {:<12} {:>12} {:>14}", "kind", "records", "bytes");
    if let Some(kinds) = d["kinds"].as_object() {
        for (k, c) in kinds {
            println!("{p}   {k:<12} {:>12} {:>14}", c["records"].as_u64().unwrap_or(0), c["bytes"].as_u64().unwrap_or(0));
        }
    }
    println!("{p} {} keys at LSN {} ({} expired, not yet removed)", d["keys"], d["end_lsn"], d["expired"]);
    for db in d["databases"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let types =
            db["types"].as_object().map(|t| t.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ")).unwrap_or_default();
        println!("{p}   db{} keys={} {types}", db["db"], db["keys"]);
    }
    println!(
        "{p} live {} ({} B) vs disk {} ({} B): live/disk {:.3}",
        human(d["live_bytes"].as_u64().unwrap_or(0)),
        d["live_bytes"],
        human(d["disk_bytes"].as_u64().unwrap_or(0)),
        d["disk_bytes"],
        d["live_ratio"].as_f64().unwrap_or(0.0)
    );
    for e in d["errors"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        println!("{p} ERROR: {}", e.as_str().unwrap_or(""));
    }
}
