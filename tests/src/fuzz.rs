//! Fuzz bodies: what must hold for any input to the parts of strand that
//! read untrusted bytes. The RESP parser and the search query language read
//! a socket; record replay, segment recovery, checkpoint loading and cold
//! tier reads read a disk.
//!
//! Each body takes arbitrary bytes, drives the real code with them and
//! panics when a property fails; returning means the input was handled.
//! Two drivers call them:
//! - the cargo-fuzz targets in `fuzz/` (coverage-guided, by hand, for as long
//!   as you like: see `fuzz/README.md`);
//! - the black-box suite's `fuzz` module, which runs them in CI on bounded
//!   numbers of mutations of a real log, a real checkpoint and real requests.
//!
//! This module may touch only the engine's and the server's public parsing and
//! recovery functions, and temporary directories.

use std::path::Path;

use strand_engine::keyspace::Keyspace;
use strand_engine::log::record::{self, RecordHeader, HEADER_LEN};
use strand_engine::log::recovery::{self, Base};
use strand_engine::log::segment::{self, SegmentHeader};
use strand_server::resp::parse::{parse_command, Limits, Parsed, ProtocolError};
use zerocopy::IntoBytes;

/// Limits small enough that random inputs reach every limit check.
pub const RESP_LIMITS: Limits = Limits { max_bulk_len: 512, max_multibulk_len: 16, max_inline_len: 256 };

/// The RESP parser over a buffer of requests.
///
/// For every request in `data`, and for many prefixes of it (a request
/// split across reads):
/// - argument ranges lie inside the frame, and respect the limits;
/// - `Incomplete { need }` asks for more than it has, and never more than
///   one maximal frame beyond it (no allocation a length prefix dictates);
/// - a prefix either waits for more, or gives exactly the whole buffer's
///   outcome; the only early errors are the "line too long before its
///   terminator" ones, and only past `max_inline_len`.
pub fn resp(data: &[u8]) {
    let limits = RESP_LIMITS;
    let mut whole_args = Vec::new();
    let mut part_args = Vec::new();
    let mut off = 0;
    while off < data.len() {
        let buf = &data[off..];
        let whole = parse_command(buf, &limits, &mut whole_args);
        check_outcome(&whole, &whole_args, buf.len(), &limits);
        let frame_end = match &whole {
            Ok(Parsed::Command { consumed } | Parsed::Inline { consumed, .. } | Parsed::Skip { consumed }) => *consumed,
            Ok(Parsed::Incomplete { .. }) | Err(_) => buf.len(),
        };
        for p in prefix_lengths(frame_end) {
            let part = parse_command(&buf[..p], &limits, &mut part_args);
            check_outcome(&part, &part_args, p, &limits);
            match (&part, &whole) {
                (Ok(Parsed::Incomplete { .. }), _) => {}
                (Err(e), _) if is_early_line_error(e) && p > limits.max_inline_len => {}
                _ => {
                    assert_eq!(&part, &whole, "prefix of {p} bytes disagrees with the whole buffer at offset {off}");
                    assert_eq!(part_args, whole_args, "prefix of {p} bytes found other arguments");
                }
            }
        }
        match whole {
            Ok(Parsed::Command { consumed } | Parsed::Inline { consumed, .. } | Parsed::Skip { consumed }) => off += consumed,
            Ok(Parsed::Incomplete { .. }) | Err(_) => break,
        }
    }
}

fn is_early_line_error(e: &ProtocolError) -> bool {
    e.0.contains("too big")
}

/// Every prefix length up to 64, then about 64 spread over the rest.
fn prefix_lengths(end: usize) -> impl Iterator<Item = usize> {
    let step = (end / 64).max(1);
    (0..end.min(64)).chain((64..end).step_by(step))
}

fn check_outcome(outcome: &Result<Parsed, ProtocolError>, args: &[(usize, usize)], len: usize, limits: &Limits) {
    match outcome {
        Ok(Parsed::Command { consumed }) => {
            assert!(*consumed > 0 && *consumed <= len, "consumed {consumed} of {len}");
            assert!(!args.is_empty() && args.len() <= limits.max_multibulk_len, "{} arguments", args.len());
            for &(s, l) in args {
                assert!(s + l <= *consumed, "argument {s}+{l} outside the frame of {consumed}");
                assert!(l <= limits.max_bulk_len, "argument of {l} bytes");
            }
        }
        Ok(Parsed::Inline { consumed, args: owned }) => {
            assert!(*consumed > 0 && *consumed <= len, "consumed {consumed} of {len}");
            assert!(owned.iter().map(Vec::len).sum::<usize>() <= *consumed, "inline arguments longer than the line");
        }
        Ok(Parsed::Skip { consumed }) => assert!(*consumed > 0 && *consumed <= len, "skipped {consumed} of {len}"),
        Ok(Parsed::Incomplete { need }) => {
            assert!(*need > len, "incomplete with {len} bytes but needs only {need}");
            let frame = limits.max_multibulk_len * (limits.max_bulk_len + 2 + 24) + 24;
            assert!(*need <= len + frame, "needs {need} with {len} bytes: more than one maximal frame");
        }
        Err(e) => assert!(e.0.starts_with("ERR Protocol error: "), "error text {:?}", e.0),
    }
}

/// Record replay: `data` is a sequence of records, each
/// `kind:u8 time_delta:u8 len:u16le payload[len]`, replayed into a fresh
/// keyspace as recovery would (checksums are assumed good: this reaches the
/// decoders and `apply` behind them). Nothing may panic; a record that does
/// not decode is refused with an error, as recovery would refuse it.
pub fn records(data: &[u8]) {
    let mut ks = Keyspace::new(None);
    let mut time = 1_700_000_000_000u64;
    let mut rest = data;
    while let [kind, dt, l0, l1, tail @ ..] = rest {
        let len = u16::from_le_bytes([*l0, *l1]) as usize;
        let payload = &tail[..len.min(tail.len())];
        time += *dt as u64;
        if strand_engine::keyspace::Op::owns(*kind) {
            let _ = ks.replay(*kind, payload, time);
        }
        rest = &tail[payload.len()..];
    }
    ks.expire_cycle(time + 1_000_000, 1000);
}

/// Replays `payloads` (kind, time, payload) into a fresh keyspace; the
/// number that decoded. For drivers that mutate real records.
pub fn replay_all(payloads: &[(u8, u64, Vec<u8>)]) -> usize {
    let mut ks = Keyspace::new(None);
    let ok = payloads.iter().filter(|(kind, time, p)| ks.replay(*kind, p, *time).is_ok()).count();
    if let Some((_, time, _)) = payloads.last() {
        ks.expire_cycle(time + 1_000_000, 1000);
    }
    ok
}

/// Checkpoint entries: `data` is one chunk's payload (checksums assumed
/// good), loaded into a fresh keyspace. Nothing may panic.
pub fn snapshot_chunk(data: &[u8]) {
    let Some((&count, payload)) = data.split_first() else { return };
    let mut ks = Keyspace::new(None);
    let _ = ks.load_snapshot_chunk(payload, count as u32, 1_700_000_000_000);
}

/// Segment recovery: `data` is a whole segment file (header block
/// included), recovered as a shard's only segment with every record replayed
/// into a keyspace. Nothing may panic, and every record recovery accepts has
/// a checksum that verifies under the segment's seed.
pub fn segment(data: &[u8]) {
    let dir = scratch_dir();
    let shard = dir.path().join("shard-000");
    std::fs::create_dir_all(&shard).expect("scratch shard directory");
    // Named as its header says, when it has one, so that inputs get past the name check.
    let seq = SegmentHeader::decode(data).map_or(1, |h| h.seq.get());
    std::fs::write(segment::segment_path(&shard, seq), data).expect("writing the scratch segment");
    let _ = recover_dir(&shard);
}

/// What [`recover_dir`] accepted: each record's file, offset and exact bytes.
pub type Accepted = Vec<(std::path::PathBuf, u64, Vec<u8>)>;

/// Recovers the segments of `shard_dir` from LSN 1 into a fresh keyspace.
/// Returns every accepted record (file, offset, header and payload bytes), or
/// the recovery error. Asserts that each accepted record's checksum verifies.
pub fn recover_dir(shard_dir: &Path) -> Result<Accepted, String> {
    let mut ks = Keyspace::new(None);
    let mut accepted = Vec::new();
    let seeds = segment_seeds(shard_dir);
    recovery::recover(shard_dir, Base::Any, |r| {
        let seed = seeds.iter().find(|(path, _)| path == r.path).map(|&(_, seed)| seed).expect("a replayed segment has a valid header");
        let mut bytes = r.header.as_bytes().to_vec();
        bytes.extend_from_slice(r.payload);
        assert!(
            record::decode(&bytes, seed).is_ok(),
            "{} at {}: recovery accepted a record whose checksum fails",
            r.path.display(),
            r.offset
        );
        accepted.push((r.path.to_path_buf(), r.offset, bytes));
        let kind = r.header.kind;
        if strand_engine::keyspace::Op::owns(kind) {
            ks.replay(kind, r.payload, r.header.time_ms()).map_err(|e| e.to_string())
        } else {
            Err(format!("unknown record kind 0x{kind:02x}"))
        }
    })
    .map(|_| accepted)
    .map_err(|e| e.to_string())
}

/// Each segment file of the directory with the checksum seed of its valid header.
fn segment_seeds(shard_dir: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let list = segment::list_segments(shard_dir).unwrap_or_default();
    list.into_iter()
        .filter_map(|(_, path)| {
            let bytes = std::fs::read(&path).ok()?;
            let header = SegmentHeader::decode(&bytes).ok()?;
            Some((path, header.seed.get()))
        })
        .collect()
}

/// Checkpoint loading: `data` is a whole checkpoint file, loaded the way
/// start-up loads the newest checkpoint. Nothing may panic; a damaged file
/// is set aside, never half-loaded into the keyspace it returns.
pub fn checkpoint_file(data: &[u8]) {
    let dir = scratch_dir();
    std::fs::write(strand_engine::checkpoint::checkpoint_path(dir.path(), 7), data).expect("writing the scratch checkpoint");
    let mut ks = Keyspace::new(None);
    match strand_server::checkpoint::load_newest(0, dir.path(), &mut ks) {
        Ok((Base::Checkpoint(_), _)) => {}
        Ok((base, _)) => {
            assert_eq!(base, Base::Empty);
            assert_eq!(ks.used_memory(), 0, "a refused checkpoint left entries behind");
        }
        Err(_) => {}
    }
}

/// Bytes before the file in a [`tier_read`] input: offset u32, value length u32, key length u8.
pub const TIER_PICK: usize = 9;

/// Cold tier reads: `data` is a pick ([`TIER_PICK`] bytes: a record's
/// offset and value length, little-endian, folded into the ranges that
/// checkpoint loading accepts, and a key length) followed by a whole cold
/// segment file, read back the way start-up replay reads a cold value (the
/// key is the file's bytes where the record's key would be). Nothing may
/// panic, and a read that succeeds returns exactly the bytes that follow a
/// record header and that key at that offset: never other bytes. Returns
/// whether the read succeeded.
pub fn tier_read(data: &[u8]) -> bool {
    use strand_engine::tier::{self, ColdRef, Tier};
    let Some((pick, file)) = data.split_first_chunk::<TIER_PICK>() else { return false };
    let word = |i: usize| u32::from_le_bytes([pick[i], pick[i + 1], pick[i + 2], pick[i + 3]]);
    let room = (file.len() as u32).saturating_sub(tier::BLOCK);
    let off = tier::BLOCK + word(0) % room.max(1);
    let len = word(4) % (tier::MAX_VALUE as u32 + 1);
    let key_at = off as usize + tier::HEADER;
    let key = file.get(key_at..key_at + pick[8] as usize).unwrap_or(&[]);
    let dir = scratch_dir();
    std::fs::write(tier::segment_path(dir.path(), 1), file).expect("writing the scratch segment");
    let Ok(t) = Tier::open(dir.path(), 0, 1 << 20) else { return false };
    let Ok(value) = t.read_sync(ColdRef { seg: 1, off, len }, key) else { return false };
    let at = key_at + key.len();
    assert_eq!(Some(&value[..]), file.get(at..at + len as usize), "a cold read returned bytes that are not the record's value");
    true
}

/// A temporary directory for one input (page cache only: nothing here is O_DIRECT).
fn scratch_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("strand-fuzz-").tempdir().expect("a scratch directory")
}

/// A record's header and payload, sealed with `seed` (for drivers that build segments).
pub fn sealed_record(seed: u64, kind: u8, lsn: u64, time_ms: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN + payload.len()];
    record::encode_into(&mut out, seed, RecordHeader::new(kind, 0, lsn, time_ms, payload.len()), payload);
    out
}

/// The documents of the index [`search_query`] runs queries on.
fn search_index() -> strand_engine::search::Index {
    use strand_engine::search::schema::{Field, Kind};
    let mut title = Field::new(b"title", Kind::Text);
    title.weight = 2.0;
    let mut n = Field::new(b"n", Kind::Numeric);
    n.sortable = true;
    let fields = vec![title, Field::new(b"body", Kind::Text), Field::new(b"tag", Kind::Tag), n];
    let schema = strand_engine::search::Schema { name: "f".into(), prefixes: vec![], stopwords: None, score: 1.0, fields };
    let mut ix = strand_engine::search::Index::new(schema);
    let words = ["hello", "world", "running", "runner", "search", "index", "fuzz", "café", "naïve", "x"];
    for d in 0..600u32 {
        let pick = |k: u32| words[((d.wrapping_mul(2_654_435_761).rotate_left(k)) % words.len() as u32) as usize];
        let body: Vec<&str> = (0..(d % 23 + 1)).map(|k| pick(k * 5)).collect();
        let (title, body, tag, num) = (pick(1), body.join(" "), ["a", "b", "a,b", "c d"][d as usize % 4], (d % 97).to_string());
        let fields = [("title", title), ("body", body.as_str()), ("tag", tag), ("n", num.as_str())];
        // Indexing our own well-formed documents cannot fail.
        let _ = ix.add(format!("d{d}").as_bytes(), |f| fields.iter().find(|(k, _)| k.as_bytes() == f).map(|(_, v)| v.as_bytes()));
        if d % 5 == 0 {
            ix.remove(format!("d{}", d / 2).as_bytes());
        }
    }
    while ix.clean_step(1000) {}
    ix
}

/// The search query language and its execution, over a query in `data`
/// (any bytes, read as UTF-8 with replacement):
/// - parsing (with and without `$params`, stop-words, VERBATIM) never
///   panics, and neither does printing the tree (FT.EXPLAIN);
/// - a query that parses runs on a small index under every scorer without
///   panicking; it returns at most `top` hits, best first, no more than it
///   counts; and its top 10 are exactly the first 10 of the full ranking
///   (block-max pruning skips only documents that cannot make the cut).
pub fn search_query(data: &[u8]) {
    use strand_engine::search::exec::{Request, Scorer};
    use strand_engine::search::query::{parse, ParseOptions};
    thread_local! {
        static INDEX: strand_engine::search::Index = search_index();
    }
    let text = String::from_utf8_lossy(data);
    let params = [("p".to_string(), "hello".to_string()), ("n".to_string(), "42".to_string())];
    let options = [
        ParseOptions::default(),
        ParseOptions { params: &params, no_stopwords: true, ..ParseOptions::default() },
        ParseOptions { params: &params, verbatim: true, ..ParseOptions::default() },
    ];
    for opts in &options {
        let Ok(node) = parse(&text, opts) else { continue };
        let _ = node.to_string();
        INDEX.with(|ix| {
            let stats = ix.stats(&ix.query_terms(&node));
            for scorer in [Scorer::Bm25Std, Scorer::Bm25, Scorer::TfIdf, Scorer::TfIdfDocNorm, Scorer::DisMax, Scorer::DocScore] {
                let full = Request { scorer, top: 100_000, ..Request::default() };
                let Ok(all) = ix.search(&node, &stats, &full) else { return };
                assert!(all.hits.len() == all.total, "{text:?}: {} hits of {} counted", all.hits.len(), all.total);
                assert!(all.hits.windows(2).all(|w| w[0].score >= w[1].score), "{text:?}: hits out of order");
                let top = ix.search(&node, &stats, &Request { scorer, top: 10, ..Request::default() });
                let top = top.unwrap_or_else(|e| panic!("{text:?}: ran once, failed with top 10: {e}"));
                assert_eq!(top.total, all.total, "{text:?} {scorer:?}: counts differ");
                assert_eq!(top.hits, all.hits[..all.total.min(10)], "{text:?} {scorer:?}: top 10 differ from the full ranking");
            }
            let _ = ix.matching(&node, &Request::default());
        });
    }
}
