//! The HTML report: one self-contained page (inline CSS and SVG, nothing fetched when it is
//! viewed) with, per test, the verdict, each threshold with its observed value, the percentiles
//! per endpoint, and three plots over the run's seconds: target against achieved rate, iteration
//! latency p50/p95/p99, and errors by kind.

use std::fmt::Write as _;

use html_escape::encode_text;

use crate::results::result::{LatencySummary, RunResult};
use crate::results::thresholds::Verdict;
use crate::results::timeline::{IntervalReport, TimelineReport};

/// Plot size in SVG user units; the page scales it to its width.
const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 240.0;
const MARGIN_LEFT: f64 = 64.0;
const MARGIN_RIGHT: f64 = 16.0;
const MARGIN_TOP: f64 = 28.0;
const MARGIN_BOTTOM: f64 = 36.0;

/// Series colours, chosen to stay apart for the common colour-vision deficiencies.
const COLOURS: [&str; 6] = [
    "#0072b2", "#e69f00", "#d55e00", "#009e73", "#cc79a7", "#56b4e9",
];

/// One line of a plot.
struct Series {
    name: String,
    points: Vec<(f64, f64)>,
    /// Drawn dashed, so that a line another one covers (the target under the achieved rate)
    /// still shows.
    dashed: bool,
}

/// A line chart over the run's seconds.
struct Chart<'a> {
    title: &'a str,
    unit: &'a str,
    series: Vec<Series>,
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `value`.
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let power = 10_f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * power)
}

impl Chart<'_> {
    fn svg(&self) -> String {
        let max_x = self
            .series
            .iter()
            .flat_map(|series| series.points.iter().map(|point| point.0))
            .fold(1.0_f64, f64::max);
        let max_y = nice_ceiling(
            self.series
                .iter()
                .flat_map(|series| series.points.iter().map(|point| point.1))
                .fold(0.0_f64, f64::max),
        );
        let plot_width = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
        let plot_height = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
        let x_of = |x: f64| MARGIN_LEFT + x / max_x * plot_width;
        let y_of = |y: f64| MARGIN_TOP + plot_height - y / max_y * plot_height;

        let mut svg = String::new();
        let _ = write!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}" class="plot">"#,
            title = encode_text(self.title)
        );
        let _ = write!(
            svg,
            r#"<text x="{MARGIN_LEFT}" y="16" class="title">{} ({})</text>"#,
            encode_text(self.title),
            encode_text(self.unit)
        );
        for tick in 0..=4 {
            let value = max_y * f64::from(tick) / 4.0;
            let y = y_of(value);
            let _ = write!(
                svg,
                r#"<line x1="{MARGIN_LEFT}" x2="{right}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{label_x}" y="{label_y:.1}" class="tick" text-anchor="end">{value}</text>"#,
                right = WIDTH - MARGIN_RIGHT,
                label_x = MARGIN_LEFT - 6.0,
                label_y = y + 4.0,
                value = format_tick(value)
            );
        }
        let step = nice_ceiling(max_x / 6.0);
        for tick in 0..=6 {
            let seconds = step * f64::from(tick);
            if seconds > max_x {
                break;
            }
            let _ = write!(
                svg,
                r#"<text x="{x:.1}" y="{y}" class="tick" text-anchor="middle">{seconds:.0} s</text>"#,
                x = x_of(seconds),
                y = HEIGHT - MARGIN_BOTTOM + 16.0
            );
        }
        for (index, series) in self.series.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            let points: Vec<String> = series
                .points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", x_of(*x), y_of(*y)))
                .collect();
            let dash = if series.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1.6"{dash} class="series"/>"#,
                points.join(" ")
            );
            let legend_x = MARGIN_LEFT + 8.0 + 150.0 * index as f64;
            let legend_y = HEIGHT - 8.0;
            let _ = write!(
                svg,
                r#"<rect x="{legend_x:.1}" y="{square_y:.1}" width="10" height="10" fill="{colour}"/><text x="{text_x:.1}" y="{legend_y:.1}" class="legend">{name}</text>"#,
                square_y = legend_y - 9.0,
                text_x = legend_x + 14.0,
                name = encode_text(&series.name)
            );
        }
        svg.push_str("</svg>");
        svg
    }
}

fn format_tick(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

/// The seconds' midpoints, so a value is drawn in the middle of the second it stands for.
fn series(
    name: &str,
    timeline: &TimelineReport,
    value: impl Fn(&IntervalReport) -> Option<f64>,
) -> Series {
    let width = timeline.interval_s as f64;
    Series {
        name: name.to_owned(),
        points: timeline
            .intervals
            .iter()
            .filter_map(|interval| {
                value(interval).map(|value| ((interval.offset_s as f64 + 0.5) * width, value))
            })
            .collect(),
        dashed: false,
    }
}

/// The three plots of one run's timeline.
fn plots(timeline: &TimelineReport) -> String {
    let per_second = |count: u64| count as f64 / timeline.interval_s.max(1) as f64;
    let rate = Chart {
        title: "target and achieved rate",
        unit: "iterations/s",
        series: vec![
            Series {
                dashed: true,
                ..series("target (due)", timeline, |interval| {
                    Some(per_second(interval.scheduled))
                })
            },
            series("achieved (started)", timeline, |interval| {
                Some(per_second(interval.started))
            }),
        ],
    };
    let latency = Chart {
        title: "iteration latency",
        unit: "ms",
        series: vec![
            series("p50", timeline, |interval| interval.p50_ms),
            series("p95", timeline, |interval| interval.p95_ms),
            series("p99", timeline, |interval| interval.p99_ms),
        ],
    };
    // Every kind of error seen in the run gets a line: statuses other than 2xx and 3xx,
    // transport errors by kind, and dropped iterations.
    let mut kinds: Vec<String> = Vec::new();
    for interval in &timeline.intervals {
        for status in interval.by_status.keys() {
            let is_error = status.parse::<u16>().map_or(true, |code| code >= 400);
            if is_error && !kinds.contains(status) {
                kinds.push(status.clone());
            }
        }
        for kind in interval.transport_errors.keys() {
            if !kinds.contains(kind) {
                kinds.push(kind.clone());
            }
        }
    }
    kinds.sort();
    let mut error_series: Vec<Series> = kinds
        .iter()
        .map(|kind| {
            let label = if kind.parse::<u16>().is_ok() {
                format!("status {kind}")
            } else {
                kind.clone()
            };
            series(&label, timeline, |interval| {
                let count = interval
                    .by_status
                    .get(kind)
                    .or_else(|| interval.transport_errors.get(kind))
                    .copied()
                    .unwrap_or(0);
                Some(per_second(count))
            })
        })
        .collect();
    error_series.push(series("dropped iterations", timeline, |interval| {
        Some(per_second(interval.dropped))
    }));
    let errors = Chart {
        title: "errors",
        unit: "per second",
        series: error_series,
    };
    format!("{}{}{}", rate.svg(), latency.svg(), errors.svg())
}

fn percentile_row(out: &mut String, name: &str, summary: &LatencySummary) {
    let _ = write!(
        out,
        "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
        encode_text(name),
        summary.count,
        summary.p50_ms,
        summary.p90_ms,
        summary.p95_ms,
        summary.p99_ms,
        summary.p99_9_ms,
        summary.max_ms
    );
}

fn verdict_class(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "pass",
        Verdict::Fail => "fail",
    }
}

fn section(out: &mut String, result: &RunResult) {
    let verdict = verdict_class(result.verdict);
    let _ = write!(
        out,
        r#"<section class="test"><h2>{} — {} <span class="verdict {verdict}">{}</span></h2>"#,
        encode_text(&result.test_id),
        encode_text(&result.scenario),
        verdict.to_uppercase()
    );
    let profile = &result.load_profile.profile;
    let _ = write!(
        out,
        "<p>{} against {}: {}/s, ramp-up {} s, steady {} s, ramp-down {} s, {} VUs; {} iterations \
         scheduled, {} completed, {} failed, {} dropped; started {}, ran {:.1} s{}.</p>",
        if result.shards > 1 {
            format!("{} shards merged", result.shards)
        } else {
            "One run".to_owned()
        },
        encode_text(&result.target),
        profile.rate_per_s,
        profile.ramp_up_s,
        profile.steady_s,
        profile.ramp_down_s,
        result.load_profile.max_vus,
        result.iterations.scheduled,
        result.iterations.completed,
        result.iterations.failed,
        result.iterations.dropped,
        encode_text(&result.started_at),
        result.duration_s,
        match &result.incomplete_reason {
            Some(reason) => format!(" — incomplete: {}", encode_text(reason)),
            None => String::new(),
        }
    );
    out.push_str("<table><tr><th>threshold</th><th>observed</th><th>verdict</th></tr>");
    for outcome in &result.thresholds {
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
            encode_text(&outcome.condition),
            encode_text(&outcome.observed_text()),
            verdict_class(outcome.verdict),
            verdict_class(outcome.verdict)
        );
    }
    out.push_str("</table>");
    out.push_str(
        "<table><tr><th>latency (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p95</th>\
         <th>p99</th><th>p99.9</th><th>max</th></tr>",
    );
    // The headline row is the latency the gate judged, named as its thresholds name it.
    percentile_row(
        out,
        &format!("{} (gated)", result.gated_latency.describe()),
        result.gated_latency_summary(),
    );
    for (name, endpoint) in &result.endpoints {
        percentile_row(out, &format!("{name} request"), &endpoint.latency);
    }
    out.push_str("</table>");
    match &result.timeline {
        Some(timeline) => out.push_str(&plots(timeline)),
        None => out.push_str(
            "<p>This result was written before loadgen kept a timeline (format 5): there is \
             nothing to plot.</p>",
        ),
    }
    if !result.notes.is_empty() {
        out.push_str("<ul class=\"notes\">");
        for note in &result.notes {
            let _ = write!(out, "<li>{}</li>", encode_text(note));
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
}

/// The page for `results`, one section per test, under `title`.
pub fn render(title: &str, results: &[RunResult]) -> String {
    let overall = if results.iter().all(|result| result.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::Fail
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title><style>{STYLE}</style></head><body><h1>{title} <span class="verdict {verdict}">{verdict_text}</span></h1>"#,
        title = encode_text(title),
        verdict = verdict_class(overall),
        verdict_text = verdict_class(overall).to_uppercase()
    );
    for result in results {
        section(&mut out, result);
    }
    out.push_str("</body></html>\n");
    out
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:820px;\
color:#1b1b1b;background:#fff}h1{font-size:22px}h2{font-size:18px;margin-top:32px}\
table{border-collapse:collapse;margin:12px 0}td,th{border:1px solid #ccc;padding:3px 8px;\
text-align:right}td:first-child,th:first-child{text-align:left}.verdict{padding:1px 8px;\
border-radius:4px;color:#fff}.verdict.pass{background:#2e7d32}.verdict.fail{background:#c62828}\
td.pass{color:#2e7d32}td.fail{color:#c62828;font-weight:bold}svg.plot{width:100%;height:auto;\
display:block;margin:12px 0;background:#fafafa}.grid{stroke:#ddd}.tick{font-size:11px;\
fill:#555}.title{font-size:13px;font-weight:bold;fill:#222}.legend{font-size:11px;fill:#222}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(300.0), 500.0);
        assert_eq!(nice_ceiling(301.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(nice_ceiling(0.042), 0.05);
    }
}
