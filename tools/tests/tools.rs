//! Runs the `strand-tools` binary on data directories built byte by byte with
//! the engine's own segment and record types.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use strand_engine::codec::Writer;
use strand_engine::keyspace::op::Op;
use strand_engine::log::record::{self, kind, RecordHeader, HEADER_LEN};
use strand_engine::log::segment::{self, SegmentHeader, BLOCK, MIN_SEGMENT_SIZE};

const SEG_SIZE: u64 = MIN_SEGMENT_SIZE;

/// One segment file being built in memory the way the log lays it out.
struct SegBuilder {
    buf: Vec<u8>,
    seed: u64,
    offsets: Vec<u64>,
}

impl SegBuilder {
    fn new(shard: u32, seq: u64, first_lsn: u64, prev_end: u64) -> SegBuilder {
        let seed = 0x5eed_0000 + seq * 7919;
        let header = SegmentHeader::new(shard, seq, seed, first_lsn, prev_end, SEG_SIZE);
        SegBuilder { buf: header.to_block().to_vec(), seed, offsets: Vec::new() }
    }

    fn add_raw(&mut self, kind: u8, lsn: u64, payload: &[u8]) {
        // A record header never starts in the last HEADER_LEN-1 bytes of a block.
        let room = BLOCK - self.buf.len() % BLOCK;
        if room < HEADER_LEN {
            self.buf.resize(self.buf.len() + room, 0);
        }
        let start = self.buf.len();
        self.offsets.push(start as u64);
        self.buf.resize(start + HEADER_LEN + payload.len(), 0);
        let header = RecordHeader::new(kind, 0, lsn, 1_700_000_000_000 + lsn, payload.len());
        record::encode_into(&mut self.buf[start..], self.seed, header, payload);
    }

    fn add(&mut self, op: &Op<'_>, lsn: u64) {
        let mut payload = vec![0u8; op.encoded_len()];
        op.encode(&mut Writer::new(&mut payload));
        self.add_raw(op.kind(), lsn, &payload);
    }

    /// Pads to the next block (a PAD record, or zeros if too short) as a flush does; returns the end.
    fn seal(&mut self) -> u64 {
        let len = self.buf.len();
        let padded = segment::align_up(len as u64) as usize;
        let gap = padded - len;
        if gap >= HEADER_LEN {
            self.buf.resize(padded, 0);
            let header = RecordHeader::new(kind::PAD, 0, 0, 0, gap - HEADER_LEN);
            let body = vec![0u8; gap - HEADER_LEN];
            record::encode_into(&mut self.buf[len..padded], self.seed, header, &body);
        } else {
            self.buf.resize(padded, 0);
        }
        padded as u64
    }

    fn write(mut self, path: &Path) {
        self.buf.resize(SEG_SIZE as usize, 0);
        std::fs::write(path, &self.buf).unwrap();
    }
}

/// A shard with three segments of four SETs each (LSN 1..=12).
struct Layout {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    segments: Vec<PathBuf>,
    offsets: Vec<Vec<u64>>,
}

fn build() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let shard = segment::shard_dir(&root, 0);
    std::fs::create_dir_all(&shard).unwrap();
    let value = [b'v'; 100];
    let mut lsn = 1;
    let mut prev_end = 0;
    let mut segments = Vec::new();
    let mut offsets = Vec::new();
    for seq in 1..=3u64 {
        let mut seg = SegBuilder::new(0, seq, lsn, prev_end);
        for i in 0..4 {
            let key = if seq == 1 && i == 3 { b"bin\x01\"key".to_vec() } else { format!("key-{lsn}").into_bytes() };
            seg.add(&Op::Set { db: 0, key: &key, value: &value[..(lsn as usize * 3)], expire_ms: 0 }, lsn);
            lsn += 1;
        }
        prev_end = seg.seal();
        let path = segment::segment_path(&shard, seq);
        offsets.push(seg.offsets.clone());
        seg.write(&path);
        segments.push(path);
    }
    Layout { _tmp: tmp, root, segments, offsets }
}

fn tools(root: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strand-tools")).args(args).arg("--dir").arg(root).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn check_clean_directory() {
    let l = build();
    let (code, out) = tools(&l.root, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shard-000: 3 segments, 12 records"), "{out}");
    assert!(out.contains("next LSN 13"), "{out}");
    assert!(out.contains("clean"), "{out}");
    let (code, out) = tools(&l.root, &["repair"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");
}

#[test]
fn truncated_last_segment_is_a_torn_tail() {
    let l = build();
    let last = &l.segments[2];
    let torn_at = l.offsets[2][3];
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len(torn_at + 10).unwrap();
    let (code, out) = tools(&l.root, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("11 records"), "{out}");
    assert!(out.contains(&format!("{} at offset {torn_at}", last.display())), "{out}");
    // The server cuts torn tails itself: repair has nothing to do.
    let (code, out) = tools(&l.root, &["repair", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");
    assert!(last.exists());
}

#[test]
fn damage_in_a_sealed_segment_then_repair() {
    let l = build();
    let bad = &l.segments[1];
    let bad_at = l.offsets[1][1];
    let mut bytes = std::fs::read(bad).unwrap();
    bytes[bad_at as usize + HEADER_LEN + 6] ^= 0x20;
    std::fs::write(bad, &bytes).unwrap();

    let (code, out) = tools(&l.root, &["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{} at offset {bad_at}", bad.display())), "{out}");
    assert!(out.contains("checksum"), "{out}");

    // Without --yes nothing changes.
    let (code, out) = tools(&l.root, &["repair"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("would move"), "{out}");
    assert!(l.segments.iter().all(|p| p.exists()));

    let (code, out) = tools(&l.root, &["repair", "--yes"]);
    assert_eq!(code, 0, "{out}");
    // The damaged segment stays; only the later one is moved aside.
    assert!(out.contains(&format!("keeping {}: its records before offset {bad_at} stay", bad.display())), "{out}");
    assert!(out.contains("drops 4 records (LSN 9..=12)"), "{out}");
    assert!(out.contains("dropping 1 segment(s): 4 records"), "{out}");
    assert!(out.contains(&format!("the server will cut {} at offset {bad_at}", bad.display())), "{out}");
    assert!(l.segments[0].exists() && l.segments[1].exists());
    for p in &l.segments[2..] {
        assert!(!p.exists());
        let mut damaged = p.as_os_str().to_owned();
        damaged.push(".damaged");
        assert!(Path::new(&damaged).exists());
    }

    // Everything before the damage is kept: what is left is a torn tail the server cuts.
    let (code, out) = tools(&l.root, &["check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("2 segments, 5 records"), "{out}");
    assert!(out.contains("next LSN 6"), "{out}");
}

#[test]
fn undecodable_payload_is_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let shard = segment::shard_dir(tmp.path(), 3);
    std::fs::create_dir_all(&shard).unwrap();
    let mut seg = SegBuilder::new(3, 1, 1, 0);
    seg.add(&Op::Del { db: 0, key: b"k" }, 1);
    seg.add_raw(0x7f, 2, b"what is this");
    let at = seg.offsets[1];
    seg.seal();
    seg.write(&segment::segment_path(&shard, 1));
    let (code, out) = tools(tmp.path(), &["check", "--shard", "3"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("0000000000000001.seg at offset {at} (LSN 2)")), "{out}");
    assert!(out.contains("unknown record kind 0x7f"), "{out}");
}

#[test]
fn dump_prints_records() {
    let l = build();
    let (code, out) = tools(&l.root, &["dump"]);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 12, "{out}");
    assert_eq!(lines[0], "000 0000000000000001.seg 4096 1 2023-11-14T22:13:20.001Z SET db=0 key=\"key-1\" len=3 expire=0");
    assert!(lines[3].ends_with(r#"SET db=0 key="bin\x01\"key" len=12 expire=0"#), "{out}");
    assert!(lines[11].starts_with(&format!("000 0000000000000003.seg {} 12 ", l.offsets[2][3])), "{out}");

    let (code, out) = tools(&l.root, &["dump", "--limit", "5", "--values"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(out.contains("len=3 expire=0 value=\"vvv\""), "{out}");
}

#[test]
fn missing_directory_or_shard() {
    let l = build();
    let (code, out) = tools(&l.root, &["check", "--shard", "7"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("shard-007"), "{out}");
    let (code, out) = tools(&l.root.join("nope"), &["check"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("nope"), "{out}");
}

#[test]
fn stats_counts_segments_kinds_and_keys() {
    let l = build();
    let (code, out) = tools(&l.root, &["stats"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("shard-000: 3 segments"), "{out}");
    assert!(out.contains("LSN 1..=4") && out.contains("LSN 9..=12"), "{out}");
    assert!(out.contains("shard-000: 12 records"), "{out}");
    assert!(out.contains("12 keys at LSN 12"), "{out}");
    assert!(out.contains("db0 keys=12 string=12"), "{out}");
    assert!(out.contains("total: 1 shards, 12 keys, 12 records"), "{out}");

    // Damage in a sealed segment: reported with file and offset, exit 2.
    let bad = &l.segments[1];
    let bad_at = l.offsets[1][1];
    let mut bytes = std::fs::read(bad).unwrap();
    bytes[bad_at as usize + HEADER_LEN + 6] ^= 0x20;
    std::fs::write(bad, &bytes).unwrap();
    let (code, out) = tools(&l.root, &["stats", "--json"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(&format!("{} at offset {bad_at}", bad.display())), "{out}");
}

#[test]
fn compact_without_a_server() {
    let l = build();
    let (code, out) = tools(&l.root, &["compact"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("at LSN 12: 12 entries"), "{out}");
    // No older checkpoint to fall back on: every segment stays, as the server keeps them.
    assert!(l.segments.iter().all(|p| p.exists()), "{out}");
    let (code, out) = tools(&l.root, &["check"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(state up to LSN 12): 12 entries") && out.contains(": ok"), "{out}");
    let (code, out) = tools(&l.root, &["compact"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to do"), "{out}");

    // A damaged checkpoint: compact refuses and leaves it for the server to set aside.
    let ckp = strand_engine::checkpoint::list(&segment::shard_dir(&l.root, 0)).unwrap()[0].1.clone();
    let mut bytes = std::fs::read(&ckp).unwrap();
    bytes[4096 + 20] ^= 1;
    std::fs::write(&ckp, &bytes).unwrap();
    let (code, out) = tools(&l.root, &["compact"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is damaged") && out.contains(&ckp.display().to_string()), "{out}");
    assert!(ckp.exists());
}

#[test]
fn dir_as_an_argument() {
    let l = build();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_strand-tools")).args(args).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let root = l.root.to_str().unwrap();
    let (code, out) = run(&["stats", root]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("12 keys at LSN 12"), "{out}");
    let (code, out) = run(&["check", root, "--dir", root]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&["check", root, "--dir", "/elsewhere"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("two data directories"), "{out}");
}
