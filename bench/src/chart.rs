//! `strand-bench report a.json [b.json …] --out chart.svg`: draws the runs of
//! `--json` result files as one SVG (plotters' SVG backend, no system fonts:
//! the text is SVG `<text>`, laid out by plotters' built-in estimate).
//!
//! Panels, top to bottom: throughput per run; latency percentiles (p50, p90,
//! p99, p99.9, log scale) per run; and, when the runs carry interval samples
//! (`--report-interval`), ops/s and p99 per interval and the server's RSS
//! over time.
//! A run is named `FILE-STEM TARGET`, e.g. `soak 127.0.0.1:7001`.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

/// The percentiles drawn, as labelled and as keyed in the JSON.
const PERCENTILES: [(&str, &str); 4] = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99.9", "p99_9")];
const WIDTH: u32 = 1000;
const TIME_PANEL: u32 = 320;
const FONT: &str = "sans-serif";

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// One run as the chart needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunData {
    /// `FILE-STEM TARGET`.
    pub label: String,
    /// Replies per second over the whole run.
    pub ops_per_sec: f64,
    /// p50, p90, p99, p99.9 over the whole run, milliseconds.
    pub latency_ms: [f64; 4],
    /// Interval samples, oldest first.
    pub points: Vec<Point>,
}

/// One interval sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Seconds since the run started.
    pub t: f64,
    /// Replies per second in the interval.
    pub ops_per_sec: f64,
    /// p99 of the interval, milliseconds.
    pub p99_ms: f64,
    /// The server's RSS, MiB, when it was measured.
    pub rss_mib: Option<f64>,
}

fn err(e: impl std::fmt::Display) -> String {
    format!("drawing the chart: {e}")
}

/// Reads the runs of one `--json` file.
pub fn load(path: &Path) -> Result<Vec<RunData>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let runs = doc
        .get("runs")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{}: no \"runs\" array (not a strand-bench --json file?)", path.display()))?;
    runs.iter().enumerate().map(|(i, r)| run_data(r, &stem).map_err(|e| format!("{}: run {i}: {e}", path.display()))).collect()
}

fn num(v: &Value, key: &str) -> Result<f64, String> {
    v.get(key).and_then(Value::as_f64).ok_or_else(|| format!("no number {key:?}"))
}

fn run_data(r: &Value, stem: &str) -> Result<RunData, String> {
    let target = r.get("target").and_then(Value::as_str).ok_or("no \"target\"")?;
    let total = r.get("total").ok_or("no \"total\"")?;
    let lat = total.get("latency_us").ok_or("no \"total.latency_us\"")?;
    let mut latency_ms = [0.0; 4];
    for (slot, (_, key)) in latency_ms.iter_mut().zip(PERCENTILES) {
        *slot = num(lat, key)? / 1000.0;
    }
    let points = match r.get("intervals").and_then(Value::as_array) {
        Some(a) => a.iter().map(point).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    Ok(RunData { label: format!("{stem} {target}"), ops_per_sec: num(total, "ops_per_sec")?, latency_ms, points })
}

fn point(v: &Value) -> Result<Point, String> {
    let lat = v.get("latency_us").ok_or("interval without \"latency_us\"")?;
    let rss_mib = v.get("rss_bytes").and_then(Value::as_f64).map(|b| b / (1024.0 * 1024.0));
    Ok(Point { t: num(v, "t")?, ops_per_sec: num(v, "ops_per_sec")?, p99_ms: num(lat, "p99")? / 1000.0, rss_mib })
}

/// Reads every input and writes the chart to `out`.
pub fn render(inputs: &[PathBuf], out: &Path) -> Result<(), String> {
    let mut runs = Vec::new();
    for path in inputs {
        runs.extend(load(path)?);
    }
    if runs.is_empty() {
        return Err("the input files hold no runs".into());
    }
    draw(&runs, out)
}

/// Heights of the two bar panels: one row per run, five rows per run.
fn bar_heights(runs: usize) -> (u32, u32) {
    let n = runs as u32;
    (110 + 34 * n, 90 + 5 * 18 * n)
}

fn draw(runs: &[RunData], out: &Path) -> Result<(), String> {
    let timed = runs.iter().any(|r| !r.points.is_empty());
    let with_rss = runs.iter().any(|r| r.points.iter().any(|p| p.rss_mib.is_some()));
    let (tp_h, lat_h) = bar_heights(runs.len());
    let height = tp_h + lat_h + TIME_PANEL * (2 * u32::from(timed) + u32::from(with_rss));
    let root = SVGBackend::new(out, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (tp, rest) = root.split_vertically(tp_h);
    let (lat, rest) = rest.split_vertically(lat_h);
    throughput(&tp, runs)?;
    latency(&lat, runs)?;
    if timed {
        let (ops, rest) = rest.split_vertically(TIME_PANEL);
        over_time(&ops, runs, "throughput per interval (ops/s)", |p| Some(p.ops_per_sec))?;
        let (p99, rest) = rest.split_vertically(TIME_PANEL);
        over_time(&p99, runs, "p99 latency per interval (ms)", |p| Some(p.p99_ms))?;
        if with_rss {
            over_time(&rest, runs, "server RSS (MiB)", |p| p.rss_mib)?;
        }
    }
    root.present().map_err(|e| format!("{}: {e}", out.display()))
}

/// Room for the longest label left of a bar panel.
fn label_room(labels: impl Iterator<Item = usize>) -> u32 {
    (labels.max().unwrap_or(0) as u32) * 8 + 20
}

fn throughput(area: &Area, runs: &[RunData]) -> Result<(), String> {
    let max = runs.iter().map(|r| r.ops_per_sec).fold(1.0, f64::max);
    let n = runs.len() as i32;
    let mut chart = ChartBuilder::on(area)
        .caption("throughput (ops/s)", (FONT, 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(label_room(runs.iter().map(|r| r.label.len())))
        // plotters' integer range a..b has b - a + 1 segments; one run still needs a range of width 1.
        .build_cartesian_2d(0.0..max * 1.2, (0..n.max(2) - 1).into_segmented())
        .map_err(err)?;
    let name = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) => usize::try_from(*i).ok().and_then(|i| runs.get(i)).map_or(String::new(), |r| r.label.clone()),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .label_style((FONT, 12))
        .disable_y_mesh()
        .y_labels(runs.len())
        .y_label_formatter(&name)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(runs.iter().enumerate().map(|(i, r)| bar(r.ops_per_sec, i as i32, 0.0, Palette99::pick(i).mix(0.8).filled())))
        .map_err(err)?;
    chart
        .draw_series(
            runs.iter()
                .enumerate()
                .map(|(i, r)| Text::new(format!(" {:.0}", r.ops_per_sec), (r.ops_per_sec, SegmentValue::CenterOf(i as i32)), (FONT, 13))),
        )
        .map_err(err)?;
    Ok(())
}

/// A horizontal bar from `from` to `value` filling segment `row` but for a margin.
fn bar(value: f64, row: i32, from: f64, style: ShapeStyle) -> Rectangle<(f64, SegmentValue<i32>)> {
    let mut r = Rectangle::new([(from, SegmentValue::Exact(row)), (value, SegmentValue::Exact(row + 1))], style);
    r.set_margin(3, 3, 0, 0);
    r
}

/// The latency panel: per run a heading row, then one row per percentile.
fn latency(area: &Area, runs: &[RunData]) -> Result<(), String> {
    let values = runs.iter().flat_map(|r| r.latency_ms);
    let lo = values.clone().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min).min(1.0) / 2.0;
    let hi = values.fold(lo * 4.0, f64::max) * 3.0;
    let rows = 5 * runs.len() as i32;
    let mut chart = ChartBuilder::on(area)
        .caption("latency percentiles (ms, log scale)", (FONT, 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(label_room(runs.iter().map(|r| r.label.len())))
        .build_cartesian_2d((lo..hi).log_scale(), (0..rows - 1).into_segmented())
        .map_err(err)?;
    // Row 5i is run i's heading; rows 5i+1..5i+4 its percentiles. Rows count from the bottom, so flip.
    let row_name = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(k) if (0..rows).contains(k) => {
            let k = (rows - 1 - k) as usize;
            match k % 5 {
                0 => runs[k / 5].label.clone(),
                j => PERCENTILES[j - 1].0.to_string(),
            }
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .label_style((FONT, 12))
        .disable_y_mesh()
        .y_labels(rows as usize)
        .y_label_formatter(&row_name)
        .draw()
        .map_err(err)?;
    for (j, (name, _)) in PERCENTILES.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let rows_of = |i: usize| rows - 1 - (5 * i + j + 1) as i32;
        chart
            .draw_series(runs.iter().enumerate().map(|(i, r)| bar(r.latency_ms[j].max(lo), rows_of(i), lo, color.filled())))
            .map_err(err)?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
        chart
            .draw_series(runs.iter().enumerate().map(|(i, r)| {
                let at = (r.latency_ms[j].max(lo), SegmentValue::CenterOf(rows_of(i)));
                Text::new(format!(" {:.3}", r.latency_ms[j]), at, (FONT, 12))
            }))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// A line per run of `value` over the run's interval samples.
fn over_time(area: &Area, runs: &[RunData], title: &str, value: impl Fn(&Point) -> Option<f64>) -> Result<(), String> {
    let t_max = runs.iter().flat_map(|r| r.points.iter().map(|p| p.t)).fold(1.0, f64::max);
    let y_max = runs.iter().flat_map(|r| r.points.iter().filter_map(&value)).fold(0.0, f64::max).max(1e-3) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(err)?;
    chart.configure_mesh().label_style((FONT, 12)).x_desc("seconds").draw().map_err(err)?;
    for (i, r) in runs.iter().enumerate() {
        let line: Vec<(f64, f64)> = r.points.iter().filter_map(|p| value(p).map(|v| (p.t, v))).collect();
        if line.is_empty() {
            continue;
        }
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))
            .map_err(err)?
            .label(r.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::client::{Config, Stats};
    use crate::keys::{Keys, Pattern};
    use crate::report::{self, Run};
    use crate::sampler::Sample;
    use crate::workload::{Kind, Ratio, Workload};

    /// A run as the client would summarize it: `n` replies of each kind, latencies 1..n µs times `scale`.
    fn run(target: &str, n: u64, scale: u64, samples: Vec<Sample>) -> Run {
        let mut stats = Stats::new();
        for us in 1..=n {
            stats.record(Kind::Get, us * scale, None);
            stats.record(Kind::Set, us * scale * 2, None);
        }
        Run::new(target.into(), Duration::from_secs(2), stats, samples)
    }

    fn samples(count: u32, rss: bool) -> Vec<Sample> {
        (1..=count)
            .map(|i| Sample {
                t: f64::from(i),
                ops_per_sec: 1000.0 * f64::from(i),
                p50: 100,
                p99: 200 + u64::from(i) * 10,
                p999: 900,
                errors: 0,
                rss_bytes: rss.then_some(u64::from(i) << 20),
            })
            .collect()
    }

    /// Writes `runs` with the bench's own serializer and returns the file.
    fn fixture(dir: &Path, name: &str, runs: &[Run]) -> PathBuf {
        let cfg = Config { connections: 4, threads: 2, pipeline: 1, requests: Some(1000), duration: None, seed: 1 };
        let w = Workload::new(Ratio::parse("1:10").unwrap(), Keys::new(Pattern::Zipfian, 100, 0.99).unwrap(), 8);
        let path = dir.join(name);
        std::fs::write(&path, report::json(&cfg, &w, runs)).unwrap();
        path
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strand-bench-chart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn report_names_every_run_and_draws_the_time_series() {
        let dir = scratch("full");
        let a = fixture(
            &dir,
            "strand.json",
            &[run("127.0.0.1:7001", 500, 1, samples(5, true)), run("127.0.0.1:7002", 500, 3, samples(5, true))],
        );
        let b = fixture(&dir, "other.json", &[run("127.0.0.1:7003", 200, 2, Vec::new())]);
        let loaded = load(&a).unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].points.len(), 5);
        assert_eq!(loaded[0].points[2].rss_mib, Some(3.0));
        let out = dir.join("chart.svg");
        render(&[a, b], &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(200)]);
        for label in ["strand 127.0.0.1:7001", "strand 127.0.0.1:7002", "other 127.0.0.1:7003"] {
            assert!(svg.contains(label), "the chart does not name {label}");
        }
        for title in ["throughput", "latency percentiles", "p99.9", "throughput per interval", "p99 latency per interval", "server RSS"] {
            assert!(svg.contains(title), "the chart has no {title:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn report_without_samples_has_no_time_panels() {
        let dir = scratch("plain");
        let a = fixture(&dir, "short.json", &[run("127.0.0.1:7001", 100, 1, Vec::new())]);
        let out = dir.join("chart.svg");
        render(&[a], &out).unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(svg.contains("short 127.0.0.1:7001"));
        assert!(!svg.contains("server RSS") && !svg.contains("per interval"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn report_rejects_files_that_are_not_results() {
        let dir = scratch("bad");
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"hello\":1}").unwrap();
        let e = render(std::slice::from_ref(&bad), &dir.join("x.svg")).unwrap_err();
        assert!(e.contains("no \"runs\""), "{e}");
        assert!(render(&[dir.join("missing.json")], &dir.join("x.svg")).is_err());
        std::fs::write(&bad, "not json").unwrap();
        assert!(render(&[bad], &dir.join("x.svg")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
