//! Results: latency percentiles, one row per scenario, the printed table and the JSON file.

use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Latency {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            p50: ms(0.50),
            p95: ms(0.95),
            p99: ms(0.99),
        }
    }
}

/// One scenario's outcome; `note` carries extra figures, or why there are none.
pub struct Report {
    pub scenario: String,
    pub target: &'static str,
    /// Value and unit, e.g. `(52000.0, "transitions/s")`.
    pub throughput: Option<(f64, &'static str)>,
    /// What `latency` measures, e.g. `StartExecution`.
    pub latency: Option<(&'static str, Latency)>,
    pub rss_mib: Option<f64>,
    pub note: String,
}

impl Report {
    pub fn new(scenario: impl Into<String>, target: &'static str) -> Report {
        Report {
            scenario: scenario.into(),
            target,
            throughput: None,
            latency: None,
            rss_mib: None,
            note: String::new(),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "target": self.target,
            "throughput": self.throughput.map(|(v, unit)| json!({"value": v, "unit": unit})),
            "latency_ms": self.latency.map(|(of, l)| json!({"of": of, "p50": l.p50, "p95": l.p95, "p99": l.p99})),
            "rss_mib": self.rss_mib,
            "note": self.note,
        })
    }
}

/// The results as a Markdown table (readable in a terminal, pasteable into docs).
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| scenario | throughput | latency p50 / p95 / p99 (ms) | server RSS | target | notes |\n|---|---|---|---|---|---|\n",
    );
    for r in reports {
        let throughput = r
            .throughput
            .map_or("-".into(), |(v, unit)| format!("{v:.0} {unit}"));
        let latency = r.latency.map_or("-".into(), |(of, l)| {
            format!("{:.2} / {:.2} / {:.2} ({of})", l.p50, l.p95, l.p99)
        });
        let rss = r.rss_mib.map_or("-".into(), |m| format!("{m:.0} MiB"));
        out += &format!(
            "| {} | {throughput} | {latency} | {rss} | {} | {} |\n",
            r.scenario, r.target, r.note
        );
    }
    out
}
