//! The report of `make bench`: a Markdown table (bench/RESULTS.md) and a
//! bar chart of the connection rates (bench/rate.svg). Each figure is the
//! median of the runs, with the spread (lowest to highest) beside it.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use super::chart::{self, Bar};
use super::memory::MemoryResult;
use super::rate::{RateOptions, RateResult};
use super::stream::{StreamOptions, StreamResult};

/// The fixed parameters of a benchmark.
#[derive(Debug, Clone, Copy)]
pub struct Parameters {
    /// Runs of each test per server.
    pub runs: usize,
    pub rate: RateOptions,
    pub one_stream: StreamOptions,
    pub four_streams: StreamOptions,
    /// Idle clients held open while the server's memory is measured.
    pub idle_clients: usize,
}

/// Everything measured for one server.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub name: String,
    /// A reference server (socat): its failures are shown, not fatal.
    pub reference: bool,
    pub rate: Vec<RateResult>,
    pub one_stream: Vec<StreamResult>,
    pub four_streams: Vec<StreamResult>,
    pub memory: MemoryResult,
}

/// The whole benchmark.
#[derive(Debug, Clone)]
pub struct Report {
    pub parameters: Parameters,
    pub rows: Vec<Measured>,
    /// How long it took.
    pub seconds: f64,
}

/// Median, lowest and highest of some figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

impl Spread {
    /// The spread of `values` (not empty).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut values: Vec<f64> = values.into_iter().collect();
        values.sort_by(f64::total_cmp);
        if values.is_empty() {
            return Spread { median: 0.0, low: 0.0, high: 0.0 };
        }
        let mid = values.len() / 2;
        let median = if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 };
        Spread { median, low: values[0], high: values[values.len() - 1] }
    }

    fn cell(&self) -> String {
        if self.low == self.high {
            format!("{:.0}", self.median)
        } else {
            format!("{:.0} ({:.0}–{:.0})", self.median, self.low, self.high)
        }
    }
}

impl Measured {
    fn rate_spread(&self) -> Spread {
        Spread::of(self.rate.iter().map(|r| r.per_second))
    }

    /// Connections and streams that failed or came back wrong, all tests.
    fn failed(&self) -> u64 {
        let rate: u64 = self.rate.iter().map(|r| r.errors + r.mismatches).sum();
        let streams: u64 =
            self.one_stream.iter().chain(&self.four_streams).map(|s| s.errors + s.mismatches).sum();
        rate + streams
    }

    /// The run whose rate is the median: its latencies go in the table.
    fn median_rate_run(&self) -> RateResult {
        let mut runs = self.rate.clone();
        runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        runs.get(runs.len() / 2).copied().unwrap_or_default()
    }
}

impl Report {
    /// Connections that failed and echoes that differed, in all runs of
    /// the servers that are not mere references.
    pub fn failures(&self) -> (u64, u64) {
        let mut errors = 0;
        let mut mismatches = 0;
        for row in self.rows.iter().filter(|row| !row.reference) {
            for r in &row.rate {
                errors += r.errors;
                mismatches += r.mismatches;
            }
            for s in row.one_stream.iter().chain(&row.four_streams) {
                errors += s.errors;
                mismatches += s.mismatches;
            }
        }
        (errors, mismatches)
    }

    /// Which servers had failures (references included).
    pub fn failures_by_server(&self) -> String {
        let failed: Vec<String> = self
            .rows
            .iter()
            .filter(|row| row.failed() > 0)
            .map(|row| format!("{}: {}", row.name, row.failed()))
            .collect();
        failed.join(", ")
    }

    /// The table, in Markdown.
    pub fn table(&self) -> String {
        let p = &self.parameters;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| server | conn/s | p50 µs | p99 µs | MB/s, 1 stream | MB/s, 4 streams | PSS, {} idle clients | per child | served | processes | failed |",
            p.idle_clients
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for row in &self.rows {
            let median = row.median_rate_run();
            let one = Spread::of(row.one_stream.iter().map(|s| s.mb_per_second));
            let four = Spread::of(row.four_streams.iter().map(|s| s.mb_per_second));
            let m = row.memory;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} KiB | {} | {} | {} | {} |",
                row.name,
                row.rate_spread().cell(),
                median.p50_us,
                median.p99_us,
                one.cell(),
                four.cell(),
                m.total_pss_kib,
                per_child(m),
                m.served,
                m.processes,
                row.failed()
            );
        }
        out
    }

    /// bench/RESULTS.md.
    pub fn markdown(&self, machine: &str) -> String {
        let p = &self.parameters;
        let (errors, mismatches) = self.failures();
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark results\n");
        let _ = writeln!(out, "Written by `make bench` (`echobench suite`); do not edit by hand.\n");
        let _ = writeln!(out, "Machine: {machine}\n");
        let _ = writeln!(
            out,
            "Each server runs on 127.0.0.1 and is measured {} times; a figure is the median, \
             with the lowest and highest run in parentheses.\n",
            p.runs
        );
        let _ = writeln!(
            out,
            "- **conn/s, p50, p99**: {} clients at once, each opening connections one after another for {} s: \
             connect, send {} bytes, read them back and check them, close. Latency of a whole connection, \
             from the run with the median rate.",
            p.rate.concurrency,
            p.rate.duration.as_secs(),
            p.rate.size
        );
        let _ = writeln!(
            out,
            "- **MB/s**: one stream of {} MiB, and four streams of {} MiB at once, each checked byte for byte \
             as it comes back (10^6 bytes per second, all streams together).",
            p.one_stream.bytes >> 20,
            p.four_streams.bytes >> 20
        );
        let _ = writeln!(
            out,
            "- **PSS**: the memory of the server's processes (proportional set size, from /proc/PID/smaps_rollup) \
             with {} idle clients connected, and the share of one child (all but the parent, divided \
             among the children); **served**: how many of them the server was serving at that \
             moment (the others waited in the queue of msock); **processes**: how many there were.\n",
            p.idle_clients
        );
        out.push_str(&self.table());
        let _ = writeln!(out, "\n![Connections per second](rate.svg)\n");
        let _ = writeln!(
            out,
            "Every echo was checked: {errors} failed connections, {mismatches} wrong echoes. \
             The whole run took {:.0} s.",
            self.seconds
        );
        if self.rows.iter().any(|row| row.reference && row.failed() > 0) {
            let _ = writeln!(
                out,
                "\nThe **failed** column counts connections or streams that failed or came back wrong. \
                 A reference server's failures (socat's echo through a pipe can stall under two long \
                 transfers at once) are shown but do not fail the benchmark."
            );
        }
        out
    }

    /// bench/rate.svg: one bar per server, its median rate, a line for the spread.
    pub fn svg(&self) -> Result<String> {
        let bars: Vec<Bar> = self
            .rows
            .iter()
            .map(|row| {
                let spread = row.rate_spread();
                Bar { name: &row.name, median: spread.median, low: spread.low, high: spread.high }
            })
            .collect();
        let title =
            format!("Connections per second (median of {}; line: lowest to highest)", self.parameters.runs);
        chart::bars(&title, &bars)
    }

    /// Writes RESULTS.md and rate.svg into `dir`.
    pub fn write(&self, dir: &Path, machine: &str) -> Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        let results = dir.join("RESULTS.md");
        fs::write(&results, self.markdown(machine))
            .with_context(|| format!("write {}", results.display()))?;
        let chart = dir.join("rate.svg");
        fs::write(&chart, self.svg()?).with_context(|| format!("write {}", chart.display()))?;
        Ok(())
    }
}

/// The PSS of one child: what the children cost, divided among them.
fn per_child(m: MemoryResult) -> String {
    match m.processes {
        0 | 1 => "–".to_string(),
        n => format!("{} KiB", m.total_pss_kib.saturating_sub(m.parent_pss_kib) / (n as u64 - 1)),
    }
}

/// A line about the machine: CPUs, their model, memory, kernel.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|rest| rest.split(':').nth(1)))
        .map_or_else(|| "unknown CPU".to_string(), |m| m.trim().to_string());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs ({model}), {mem_gib:.0} GiB, Linux {}", kernel.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_median_and_the_extremes() {
        assert_eq!(Spread::of([3.0, 1.0, 2.0]), Spread { median: 2.0, low: 1.0, high: 3.0 });
        assert_eq!(Spread::of([4.0, 1.0]), Spread { median: 2.5, low: 1.0, high: 4.0 });
        assert_eq!(Spread::of([5.0]).cell(), "5");
        assert_eq!(Spread::of([1.0, 2.0, 9.0]).cell(), "2 (1–9)");
    }
}
