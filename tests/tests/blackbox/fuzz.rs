//! Bounded fuzzing in CI, on real bytes: a real server writes a log and a
//! checkpoint with every view, and the fuzz bodies of
//! [`strand_tests::fuzz`] are run on mutations of its records, segments,
//! checkpoint chunks and requests. Coverage-guided runs of the same bodies,
//! for as long as you like, are the cargo-fuzz targets in `fuzz/`.
//!
//! `STRAND_FUZZ_ROUNDS` scales every loop (default 1). With
//! `STRAND_FUZZ_CORPUS=DIR`, the real inputs are also written as seed
//! corpora, one folder per cargo-fuzz target (`DIR/resp`, `DIR/records` ...).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strand_engine::log::segment::{self, SegmentHeader, Step, BLOCK, DATA_START};
use strand_tests::commands::q;
use strand_tests::fuzz;
use strand_tests::Server;

/// Commands of every view, in an order that builds state the later ones use.
const WORKLOAD: &[&[&str]] = &[
    &["SET", "s", "hello", "EX", "100"],
    &["APPEND", "s", " world"],
    &["SETRANGE", "s", "3", "LO"],
    &["INCRBY", "n", "41"],
    &["MSET", "{m}a", "1", "{m}b", "2"],
    &["RENAME", "{m}a", "{m}c"],
    &["COPY", "{m}b", "{m}d"],
    &["MOVE", "{m}d", "3"],
    &["PEXPIRE", "n", "500000"],
    &["HSET", "h", "a", "1", "b", "2", "c", "3"],
    &["HDEL", "h", "b"],
    &["HINCRBYFLOAT", "h", "a", "1.5"],
    &["RPUSH", "l", "a", "b", "c", "d", "e"],
    &["LPOP", "l"],
    &["LSET", "l", "1", "B"],
    &["LTRIM", "l", "0", "2"],
    &["SADD", "{z}set", "a", "b", "c", "d"],
    &["SREM", "{z}set", "d"],
    &["SPOP", "{z}set"],
    &["ZADD", "{z}zs", "1", "a", "2", "b", "3", "c"],
    &["ZINCRBY", "{z}zs", "5", "a"],
    &["ZPOPMIN", "{z}zs"],
    &["ZUNIONSTORE", "{z}u", "2", "{z}zs", "{z}set"],
    &["XADD", "st", "*", "f", "v"],
    &["XADD", "st", "*", "f", "w"],
    &["XGROUP", "CREATE", "st", "g", "0"],
    &["XREADGROUP", "GROUP", "g", "c1", "COUNT", "1", "STREAMS", "st", ">"],
    &["XTRIM", "st", "MAXLEN", "5"],
    &["QPUSH", "q", "job1", "ID", "d1"],
    &["QPUSH", "q", "job2", "DELAY", "100000"],
    &["QPOP", "q"],
    &["TS.CREATE", "ts", "RETENTION", "0", "LABELS", "host", "a"],
    &["TS.ADD", "ts", "1000", "1.5"],
    &["TS.ADD", "ts", "2000", "2.5"],
    &["TS.CREATE", "ts:avg"],
    &["TS.CREATERULE", "ts", "ts:avg", "AGGREGATION", "avg", "1000"],
    &["HSET", "doc:1", "title", "hello search", "tag", "a,b", "n", "7"],
    &["FT.CREATE", "idx", "PREFIX", "1", "doc:", "SCHEMA", "title", "TEXT", "tag", "TAG", "n", "NUMERIC"],
    &["FT.SYNUPDATE", "idx", "g1", "hello", "hi"],
    &["FT.DICTADD", "dict", "word"],
    &["FT.SUGADD", "sug", "hello world", "3"],
    &["EVAL", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('INCR', KEYS[2])", "2", "{e}a", "{e}b", "v"],
    &["SWAPDB", "0", "5"],
    &["SWAPDB", "0", "5"],
    &["DEL", "{m}b"],
    &["FLUSHDB"],
];

fn rounds() -> usize {
    std::env::var("STRAND_FUZZ_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1)
}

/// One shard's data directory after the workload, a SAVE, the workload
/// again and a SIGKILL: a checkpoint and a log of every record kind.
struct RealData {
    _server: Server,
    shard_dir: PathBuf,
}

fn real_data() -> RealData {
    // Only the SAVE below checkpoints: a background one (the log grew by two
    // segments, which `always` does in some 32 writes) would remove the
    // segments the first holds, and with them the records that make the state
    // the later ones replay onto.
    let mut s = Server::start(&[
        "--shards",
        "1",
        "--appendfsync",
        "always",
        "--segment-size",
        "64kb",
        "--compaction-threshold",
        "0",
        "--checkpoint-interval",
        "0",
    ]);
    let mut c = s.client();
    // Under `always` the log leaves its first segment (fallocated) for the
    // next one as soon as that is zero-filled: let that happen first, so the
    // segments the workload fills end at the same records in every run.
    for i in 0.. {
        assert!(i < 250, "the log never left its first segment");
        q::<()>(&mut c, &["SET", "warm-up", &i.to_string()]);
        let info: String = q(&mut c, &["INFO", "persistence"]);
        if info.lines().any(|l| l.trim() == "log_segments_prepared:1") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for round in 0..3 {
        for args in WORKLOAD {
            // Later rounds repeat creations (TS.CREATE, FT.CREATE ...) that fail: those write nothing.
            let r = strand_tests::commands::cmd(args).query::<redis::Value>(&mut c);
            assert!(round > 0 || r.is_ok(), "{args:?}: {r:?}");
        }
        if round == 0 {
            q::<()>(&mut c, &["SAVE"]);
        }
    }
    s.kill();
    let shard_dir = s.dir.join("shard-000");
    RealData { _server: s, shard_dir }
}

/// A record read back from a real segment.
struct Rec {
    kind: u8,
    time: u64,
    payload: Vec<u8>,
}

/// A segment file: its path, its bytes and where its records end.
type SegmentFile = (PathBuf, Vec<u8>, usize);

/// Every valid record of every segment, in order, and the segment files.
fn read_log(shard_dir: &Path) -> (Vec<Rec>, Vec<SegmentFile>) {
    let mut recs = Vec::new();
    let mut segs = Vec::new();
    for (_, path) in segment::list_segments(shard_dir).unwrap() {
        let bytes = std::fs::read(&path).unwrap();
        let header = SegmentHeader::decode(&bytes).unwrap();
        let mut walk = segment::Walk::new(&bytes, header.seed.get(), bytes.len());
        let end = loop {
            match walk.next_step() {
                Step::Record { header, payload, .. } => {
                    if header.kind != strand_engine::log::record::kind::PAD {
                        recs.push(Rec { kind: header.kind, time: header.time_ms(), payload: payload.to_vec() });
                    }
                }
                Step::Invalid { offset, .. } | Step::End { offset } => break offset,
            }
        };
        segs.push((path, bytes, end));
    }
    (recs, segs)
}

/// Random damage: bit flips, bytes set to edge values, cuts, repeats and insertions.
fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        if b.is_empty() {
            b.push(rng.gen());
            continue;
        }
        let at = rng.gen_range(0..b.len());
        match rng.gen_range(0..7) {
            0 => b[at] ^= 1 << rng.gen_range(0..8),
            1 => b[at] = [0, 0xff, 0x7f, 0x80, b'\r', b'\n', b'$', b'*'][rng.gen_range(0..8)],
            2 => b.truncate(at),
            3 => {
                let end = (at + rng.gen_range(1..16)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
            4 => {
                let n = rng.gen_range(1..8);
                b.splice(at..at, (0..n).map(|_| rng.gen::<u8>()));
            }
            5 => {
                // A length field set to something large, odd or negative.
                let v: u32 = [0, 1, u32::MAX, i32::MAX as u32, 0x8000_0000, 65_536][rng.gen_range(0..6)];
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            }
            _ => {
                let digits = ["-1", "0", "99999999999", "512", "513", "17", "-9223372036854775808"][rng.gen_range(0..7)];
                b.splice(at..at, digits.bytes());
            }
        }
    }
    b
}

fn resp_of(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Writes `inputs` as the seed corpus of a cargo-fuzz target when `STRAND_FUZZ_CORPUS` is set.
fn seed_corpus(target: &str, inputs: impl IntoIterator<Item = Vec<u8>>) {
    let Ok(root) = std::env::var("STRAND_FUZZ_CORPUS") else { return };
    let dir = Path::new(&root).join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, input) in inputs.into_iter().enumerate() {
        std::fs::write(dir.join(format!("real-{i:04}")), input).unwrap();
    }
}

/// Records in the input format of [`fuzz::records`].
fn records_input(recs: &[(u8, u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut last = recs.first().map_or(0, |r| r.1);
    for (kind, time, payload) in recs.iter().filter(|r| r.2.len() <= u16::MAX as usize) {
        out.push(*kind);
        out.push(time.saturating_sub(last).min(255) as u8);
        last = *time;
        out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out
}

#[test]
fn resp_parser_holds_on_mutated_requests() {
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seeds: Vec<Vec<u8>> = WORKLOAD.iter().map(|a| resp_of(a)).collect();
    seeds.extend(WORKLOAD.iter().map(|a| format!("{}\r\n", a.join(" ")).into_bytes()));
    seeds.push(b"SET k \"quoted \\x41 value\" 'single'\n".to_vec());
    seeds.push([resp_of(&["PING"]), resp_of(&["SET", "k", "v"]), b"PING\r\n".to_vec()].concat());
    seed_corpus("resp", seeds.clone());
    for i in 0..20_000 * rounds() {
        let a = &seeds[rng.gen_range(0..seeds.len())];
        let input = if i % 3 == 0 { [a.clone(), seeds[rng.gen_range(0..seeds.len())].clone()].concat() } else { a.clone() };
        let input = mutate(&mut rng, &input);
        let r = std::panic::catch_unwind(|| fuzz::resp(&input));
        assert!(r.is_ok(), "seed {seed}: input {:?}", String::from_utf8_lossy(&input));
    }
}

#[test]
fn replay_and_checkpoint_decoders_survive_mutated_real_records() {
    let data = real_data();
    let (recs, _) = read_log(&data.shard_dir);
    let kinds: std::collections::BTreeSet<u8> = recs.iter().map(|r| r.kind).collect();
    assert!(recs.len() > 60 && kinds.len() >= 20, "a log of every view: {} records of kinds {kinds:02x?}", recs.len());
    // The unharmed log replays whole: the mutations below start from real records.
    let all: Vec<(u8, u64, Vec<u8>)> = recs.iter().map(|r| (r.kind, r.time, r.payload.clone())).collect();
    assert_eq!(fuzz::replay_all(&all), all.len(), "the real log replays");
    seed_corpus("records", all.chunks(16).map(records_input));

    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..1500 * rounds() {
        let start = rng.gen_range(0..all.len());
        let mut window: Vec<(u8, u64, Vec<u8>)> = all[start..(start + 40).min(all.len())].to_vec();
        for _ in 0..rng.gen_range(1..=2) {
            let i = rng.gen_range(0..window.len());
            window[i].2 = mutate(&mut rng, &window[i].2);
            if rng.gen_ratio(1, 10) {
                window[i].0 = all[rng.gen_range(0..all.len())].0;
            }
        }
        let r = std::panic::catch_unwind(|| fuzz::replay_all(&window));
        assert!(r.is_ok(), "seed {seed}: a mutated record window from {start} panicked the replay");
    }

    let chunks = checkpoint_chunks(&data.shard_dir);
    assert!(!chunks.is_empty(), "the SAVE wrote a checkpoint with entries");
    seed_corpus("snapshot_chunk", chunks.iter().map(|(count, payload)| [&[*count as u8][..], payload].concat()));
    for _ in 0..1500 * rounds() {
        let (count, payload) = &chunks[rng.gen_range(0..chunks.len())];
        let mut input = vec![*count as u8];
        input.extend(mutate(&mut rng, payload));
        let r = std::panic::catch_unwind(|| fuzz::snapshot_chunk(&input));
        assert!(r.is_ok(), "seed {seed}: a mutated checkpoint chunk panicked the loader");
    }
}

/// The (entries, payload) of each chunk of the newest checkpoint.
fn checkpoint_chunks(shard_dir: &Path) -> Vec<(u32, Vec<u8>)> {
    let (_, path) = strand_engine::checkpoint::list(shard_dir).unwrap().into_iter().next().expect("a checkpoint");
    let mut chunks = Vec::new();
    strand_engine::checkpoint::load(&path, |c| {
        chunks.push((c.entries, c.payload.to_vec()));
        Ok(())
    })
    .unwrap();
    chunks
}

#[test]
fn recovery_never_accepts_a_damaged_record_and_keeps_what_precedes_it() {
    let data = real_data();
    let (_, segs) = read_log(&data.shard_dir);
    // The whole log is copied; only its last segment is damaged (damage in a
    // sealed segment is refused at start-up, which the durability tests cover).
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("shard-000");
    std::fs::create_dir_all(&dir).unwrap();
    for (path, bytes, _) in &segs[..segs.len() - 1] {
        std::fs::write(dir.join(path.file_name().unwrap()), bytes).unwrap();
    }
    let (path, bytes, end) = segs.last().unwrap().clone();
    let name = path.file_name().unwrap().to_owned();
    let original = bytes[..(segment::align_up(end as u64) as usize + BLOCK).min(bytes.len())].to_vec();
    // Recovers the copy; the records it accepted from the last segment, by offset.
    let recover = |file: &[u8]| -> Result<Vec<(u64, Vec<u8>)>, String> {
        std::fs::write(dir.join(&name), file).unwrap();
        let accepted = fuzz::recover_dir(&dir)?;
        Ok(accepted.into_iter().filter(|(p, _, _)| p.file_name() == Some(name.as_os_str())).map(|(_, o, r)| (o, r)).collect())
    };
    let clean = recover(&original).unwrap();
    seed_corpus("segment", [original.clone()]);
    assert!(clean.len() > 10, "the last segment holds records ({})", clean.len());

    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    for _ in 0..300 * rounds() {
        let mut damaged = original.clone();
        let mut first = usize::MAX;
        for _ in 0..rng.gen_range(1..=3) {
            let at = rng.gen_range(DATA_START as usize..end);
            damaged[at] ^= 1 << rng.gen_range(0..8);
            first = first.min(at);
        }
        let got =
            recover(&damaged).unwrap_or_else(|e| panic!("seed {seed}: damage in the last segment is a torn tail, not a refusal: {e}"));
        for (offset, rec) in &got {
            let o = *offset as usize;
            assert_eq!(&original[o..o + rec.len()], &rec[..], "seed {seed}: the record at {o} was accepted with damage");
        }
        let before: Vec<_> = clean.iter().filter(|(o, r)| *o as usize + r.len() <= first).collect();
        assert!(got.len() >= before.len(), "seed {seed}: damage at {first} lost {} earlier records", before.len() - got.len());
    }
    // Damage anywhere, header included, never panics.
    for _ in 0..200 * rounds() {
        let damaged = mutate(&mut rng, &original);
        let r = std::panic::catch_unwind(|| fuzz::segment(&damaged));
        assert!(r.is_ok(), "seed {seed}: a mutated segment panicked recovery");
    }
    let checkpoint = std::fs::read(strand_engine::checkpoint::list(&data.shard_dir).unwrap()[0].1.clone()).unwrap();
    seed_corpus("checkpoint", [checkpoint.clone()]);
    for _ in 0..200 * rounds() {
        let damaged = mutate(&mut rng, &checkpoint);
        let r = std::panic::catch_unwind(|| fuzz::checkpoint_file(&damaged));
        assert!(r.is_ok(), "seed {seed}: a mutated checkpoint panicked its loader");
    }
}

/// The records of a real cold tier file: (offset, key length, value length), walking the
/// format its module documents (records back to back; zeros pad a flush to its 4 KiB block).
fn tier_records(file: &[u8]) -> Vec<(u32, u8, u32)> {
    use strand_engine::tier::{BLOCK, HEADER};
    let (mut out, mut pos, block) = (Vec::new(), BLOCK as usize, BLOCK as usize);
    while pos + HEADER <= file.len() {
        let h = &file[pos..pos + HEADER];
        if h[7] != 0xC0 {
            pos = (pos / block + 1) * block;
            continue;
        }
        let value_len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let key_len = u16::from_le_bytes([h[4], h[5]]);
        out.push((pos as u32, key_len.min(255) as u8, value_len));
        pos += HEADER + key_len as usize + value_len as usize;
    }
    out
}

#[test]
fn cold_reads_never_return_other_bytes_from_a_mutated_tier_file() {
    // A real tier file: a small budget pushes most of 3000 values of 1000 bytes to disk.
    let mut s = Server::start(&["--shards", "1", "--maxmemory", "1mb", "--appendfsync", "always"]);
    let mut c = s.client();
    for i in 0..3000 {
        q::<()>(&mut c, &["SET", &format!("cold:{i}"), &format!("{i:04}").repeat(250)]);
    }
    q::<()>(&mut c, &["SAVE"]);
    s.kill();
    let path = strand_engine::tier::segment_path(&s.dir.join("shard-000"), 1);
    let file = std::fs::read(&path).unwrap();
    let recs = tier_records(&file);
    assert!(recs.len() > 1000, "only {} records in {}", recs.len(), path.display());
    let input = |file: &[u8], (off, klen, len): (u32, u8, u32)| {
        let mut v = Vec::with_capacity(fuzz::TIER_PICK + file.len());
        v.extend_from_slice(&(off - strand_engine::tier::BLOCK).to_le_bytes());
        v.extend_from_slice(&len.to_le_bytes());
        v.push(klen);
        v.extend_from_slice(file);
        v
    };
    // Unharmed, every record the walk found reads back (so the property below can fail).
    for &r in recs.iter().step_by(97) {
        assert!(fuzz::tier_read(&input(&file, r)), "the record at {} of {} does not read back", r.0, path.display());
    }
    seed_corpus("tier", recs.iter().step_by(500).map(|&r| input(&file[..(r.0 as usize + 8192).min(file.len())], r)));
    let mut rng = StdRng::seed_from_u64(0x7131);
    for round in 0..300 * rounds() {
        let r = recs[rng.gen_range(0..recs.len())];
        // Damage near the record most of the time, anywhere otherwise.
        let mut damaged = file.clone();
        let at = if round % 4 == 0 { rng.gen_range(0..file.len()) } else { (r.0 as usize + rng.gen_range(0..1100)).min(file.len() - 1) };
        let (head, tail) = damaged.split_at(at);
        let mut piece = mutate(&mut rng, &tail[..tail.len().min(64)]);
        piece.extend_from_slice(&tail[tail.len().min(64)..]);
        damaged = [head, &piece[..]].concat();
        let r = if round % 5 == 0 { (rng.gen_range(4096..file.len() as u32), rng.gen(), rng.gen_range(0..2000)) } else { r };
        let case = input(&damaged, r);
        let read = std::panic::catch_unwind(|| fuzz::tier_read(&case));
        assert!(read.is_ok(), "round {round}: a damaged tier file broke a cold read (record at {})", r.0);
        // A record whose own bytes (or the file header with its seed) changed must not read back.
        let span = |f: &[u8], a: usize, b: usize| f.get(a..b.min(f.len())).map(<[u8]>::to_vec);
        let end = r.0 as usize + strand_engine::tier::HEADER + r.1 as usize + r.2 as usize;
        let touched = span(&file, r.0 as usize, end) != span(&damaged, r.0 as usize, end) || file[..40] != damaged[..40.min(damaged.len())];
        assert!(!(touched && read.unwrap_or(false)), "round {round}: the damaged record at {} read back as good", r.0);
    }
}

/// Queries built from the language's pieces at random (words, prefixes,
/// fuzzy terms, phrases, fields, tags, ranges, params, operators, stray
/// brackets and quotes, non-ASCII) through [`fuzz::search_query`].
#[test]
fn random_search_queries_parse_run_and_rank_like_the_full_ranking() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let pieces = [
        "hello",
        "world",
        "run*",
        "runn*",
        "%serch%",
        "%%indx%%",
        "\"hello world\"",
        "\"running",
        "@title:",
        "@body|title:",
        "@tag:{a}",
        "@tag:{a | b*}",
        "@tag:{c\\ d}",
        "@n:[10 20]",
        "@n:[(10 +inf]",
        "@n:[-inf (5]",
        "$p",
        "$n",
        "$missing",
        "|",
        "-",
        "~",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        "*",
        "café",
        "naïve",
        "x",
        "the",
        "a",
        ":",
        "\\",
        "\"",
        "@",
        "%",
        "=>",
        "{$yield_distance_as: d}",
        "@n:[$n $n]",
        "-(hello | world)",
        "~fuzz",
        "((",
        "))",
        "  ",
        "\t",
        "\n",
    ];
    let mut rng = StdRng::seed_from_u64(0x5ea4c4);
    let mut corpus = Vec::new();
    for _ in 0..3_000 {
        let mut query = String::new();
        for _ in 0..rng.gen_range(1..7) {
            query.push_str(pieces[rng.gen_range(0..pieces.len())]);
            if rng.gen_bool(0.7) {
                query.push(' ');
            }
        }
        fuzz::search_query(query.as_bytes());
        if corpus.len() < 200 {
            corpus.push(query.into_bytes());
        }
    }
    seed_corpus("search_query", corpus);
}
