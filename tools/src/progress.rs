//! A progress line for long runs: redrawn in place with `\r` on stderr when
//! stderr is a terminal, and silent otherwise (pipes, files, tests), so
//! scripted output stays exactly what the subcommand prints.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often the line is redrawn at most.
const EVERY: Duration = Duration::from_millis(100);

/// One progress line: `label [#####.....] done/total unit`.
pub struct Progress {
    on: bool,
    label: String,
    total: u64,
    last: Option<Instant>,
    drawn: bool,
    /// Whether the amounts are bytes (else plain counts).
    bytes: bool,
}

impl Progress {
    /// A progress line for `total` bytes of work; quiet unless stderr is a terminal.
    pub fn new(label: impl Into<String>, total: u64) -> Progress {
        Progress { on: std::io::stderr().is_terminal(), label: label.into(), total, last: None, drawn: false, bytes: true }
    }

    /// A progress line for `total` items (entries, records) rather than bytes.
    pub fn items(label: impl Into<String>, total: u64) -> Progress {
        let mut p = Progress::new(label, total);
        p.bytes = false;
        p
    }

    /// Reports `done` bytes of the total as done (redrawn at most every 100 ms).
    pub fn set(&mut self, done: u64) {
        if !self.on || self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let frac = if self.total == 0 { 1.0 } else { (done as f64 / self.total as f64).min(1.0) };
        let width = 30usize;
        let filled = (frac * width as f64) as usize;
        let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
        let mut err = std::io::stderr().lock();
        let (d, t) = if self.bytes { (human(done), human(self.total)) } else { (done.to_string(), self.total.to_string()) };
        let _ = write!(err, "\r\x1b[2K{} [{bar}] {:>3.0}% {d}/{t}", self.label, frac * 100.0);
        let _ = err.flush();
        self.drawn = true;
    }

    /// Clears the line, so what is printed next starts on a clean line.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Bytes in binary units, one decimal: `512 B`, `3.2 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Tracks a replay's position over a shard's segment files as bytes done.
pub struct SegmentPosition {
    /// (path, file size) of every segment, oldest first.
    files: Vec<(std::path::PathBuf, u64)>,
    /// Index of the file the replay is in, and the bytes of the files before it.
    at: usize,
    before: u64,
}

impl SegmentPosition {
    /// The segments of `shard_dir`, with their sizes (unreadable ones count 0).
    pub fn new(shard_dir: &std::path::Path) -> SegmentPosition {
        let files = strand_engine::log::segment::list_segments(shard_dir)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, p)| {
                let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                (p, len)
            })
            .collect();
        SegmentPosition { files, at: 0, before: 0 }
    }

    /// Sum of the segment files' sizes.
    pub fn total(&self) -> u64 {
        self.files.iter().map(|(_, l)| l).sum()
    }

    /// Bytes done when the replay is at `offset` of `path`.
    pub fn done(&mut self, path: &std::path::Path, offset: u64) -> u64 {
        while self.at < self.files.len() && self.files[self.at].0 != path {
            self.before += self.files[self.at].1;
            self.at += 1;
        }
        self.before + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
