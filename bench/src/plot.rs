//! SVG plots of the JSON results (`xlns-bench plot`): a small hand-written SVG line-chart
//! writer (no plotting crate: it would cost the build more than these 200 lines).
//!
//! From one or more `compare --json-out` files (or `forwarding-bench --json` lines):
//!
//! * `throughput-vs-sessions.svg`: forwarded packets per second against the session
//!   count, one line per LNS and direction (one point per input file);
//! * `latency-percentiles.svg`: p50 / p90 / p99 / p99.9 / max latency of each LNS and
//!   direction (of the first file);
//! * `setup-rate.svg`: sessions up in each second of the setup, per LNS (first file).

use std::fmt::Write as _;

use serde_json::Value;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Labels at given x positions instead of numeric ticks.
    pub x_ticks: Option<Vec<(f64, String)>>,
    pub series: Vec<Series>,
}

const W: f64 = 720.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 180.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step for a range (1, 2 or 5 times a power of ten).
pub fn tick_step(range: f64, ticks: f64) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / ticks.max(1.0);
    let p = 10f64.powf(raw.log10().floor());
    let m = raw / p;
    p * if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

fn fmt_num(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.3}M", v / 1e6)
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
            .replace(".M", "M")
    } else if a >= 1e3 {
        format!("{}k", (v / 1e3 * 1000.0).round() / 1000.0)
    } else if a == 0.0 || a >= 1.0 {
        format!("{}", (v * 100.0).round() / 100.0)
    } else {
        format!("{v:.3}")
    }
}

impl Chart {
    /// The chart as an SVG document.
    pub fn svg(&self) -> String {
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0_f64);
        for (x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y1 = y1.max(*y);
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let ystep = tick_step(if y1 > 0.0 { y1 } else { 1.0 }, 5.0);
        let ytop = (y1 / ystep).ceil().max(1.0) * ystep;
        let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
        let sx = |x: f64| LEFT + (x - x0) / (x1 - x0) * pw;
        let sy = |y: f64| TOP + ph - y / ytop * ph;
        let mut o = String::new();
        let _ = writeln!(
            o,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
        let _ = writeln!(
            o,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            W / 2.0,
            escape(&self.title)
        );
        // Grid and y ticks.
        let mut y = 0.0;
        while y <= ytop + ystep / 2.0 {
            let py = sy(y);
            let _ = writeln!(
                o,
                r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + pw,
                LEFT - 6.0,
                py + 4.0,
                fmt_num(y)
            );
            y += ystep;
        }
        // X ticks.
        let ticks: Vec<(f64, String)> = match &self.x_ticks {
            Some(t) => t.clone(),
            None => {
                let step = tick_step(x1 - x0, 6.0);
                let mut v = Vec::new();
                let mut x = (x0 / step).ceil() * step;
                while x <= x1 + step * 1e-9 {
                    v.push((x, fmt_num(x)));
                    x += step;
                }
                v
            }
        };
        for (x, label) in ticks {
            let px = sx(x);
            let _ = writeln!(
                o,
                r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#999"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                TOP + ph,
                TOP + ph + 5.0,
                TOP + ph + 20.0,
                escape(&label)
            );
        }
        let _ = writeln!(
            o,
            r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>"##
        );
        let _ = writeln!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + pw / 2.0,
            H - 15.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            o,
            r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
            TOP + ph / 2.0,
            TOP + ph / 2.0,
            escape(&self.y_label)
        );
        for (i, s) in self.series.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let path: Vec<String> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let _ = writeln!(
                o,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for p in &path {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(o, r#"<circle cx="{px}" cy="{py}" r="3" fill="{c}"/>"#);
            }
            let ly = TOP + 10.0 + i as f64 * 18.0;
            let _ = writeln!(
                o,
                r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
                W - RIGHT + 12.0,
                W - RIGHT + 32.0,
                W - RIGHT + 38.0,
                ly + 4.0,
                escape(&s.name)
            );
        }
        o.push_str("</svg>\n");
        o
    }
}

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The compare reports' `(lns, direction, forwarded pps)` of each run.
fn runs(report: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for l in report["lnses"].as_array().into_iter().flatten() {
        let lns = l["lns"].as_str().unwrap_or("?").to_owned();
        for r in l["runs"].as_array().into_iter().flatten() {
            out.push((
                lns.clone(),
                r["direction"].as_str().unwrap_or("?").to_owned(),
                r,
            ));
        }
    }
    out
}

/// Throughput against sessions, one point per report.
pub fn throughput_vs_sessions(reports: &[Value]) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    for rep in reports {
        let Some(n) = f(&rep["sessions"]) else {
            continue;
        };
        for (lns, dir, r) in runs(rep) {
            let name = format!("{lns} {dir}");
            let y = f(&r["forwarded_pps"]).unwrap_or(0.0);
            match series.iter_mut().find(|s| s.name == name) {
                Some(s) => s.points.push((n, y)),
                None => series.push(Series {
                    name,
                    points: vec![(n, y)],
                }),
            }
        }
    }
    // Session counts span decades: a log axis, ticked at the counts measured.
    let mut counts: Vec<f64> = Vec::new();
    for s in &mut series {
        s.points.retain(|p| p.0 > 0.0);
        s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        for p in &mut s.points {
            if !counts.contains(&p.0) {
                counts.push(p.0);
            }
            p.0 = p.0.log10();
        }
    }
    counts.sort_by(f64::total_cmp);
    Chart {
        title: "Forwarded packets per second against sessions".into(),
        x_label: "sessions (log scale)".into(),
        y_label: "packets per second".into(),
        x_ticks: Some(counts.iter().map(|c| (c.log10(), fmt_num(*c))).collect()),
        series,
    }
}

/// Latency percentiles of every LNS and direction of one report.
pub fn latency_percentiles(report: &Value) -> Chart {
    let keys = ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"];
    let mut series = Vec::new();
    for (lns, dir, r) in runs(report) {
        for way in ["up", "down"] {
            let lat = &r["traffic"][way]["latency"];
            if lat.is_null() {
                continue;
            }
            series.push(Series {
                name: format!("{lns} {dir} ({way})"),
                points: keys
                    .iter()
                    .enumerate()
                    .filter_map(|(i, k)| f(&lat[*k]).map(|v| (i as f64, v)))
                    .collect(),
            });
        }
    }
    Chart {
        title: "Latency percentiles".into(),
        x_label: "percentile".into(),
        y_label: "latency, microseconds".into(),
        x_ticks: Some(
            ["p50", "p90", "p99", "p99.9", "max"]
                .iter()
                .enumerate()
                .map(|(i, l)| (i as f64, (*l).to_owned()))
                .collect(),
        ),
        series,
    }
}

/// Sessions up in each second of the setup, per LNS.
pub fn setup_rate(report: &Value) -> Chart {
    let series: Vec<Series> = report["lnses"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| Series {
            name: l["lns"].as_str().unwrap_or("?").to_owned(),
            points: l["setup"]["setup_timeline"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, v)| (i as f64 + 1.0, f(v).unwrap_or(0.0)))
                .collect(),
        })
        .collect();
    // Whole seconds on the x axis, ten labels at most.
    let n = series
        .iter()
        .map(|s| s.points.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let step = n.div_ceil(10);
    Chart {
        title: "Session setup rate over time".into(),
        x_label: "second of the setup".into(),
        y_label: "sessions up in that second".into(),
        x_ticks: Some(
            (1..=n)
                .step_by(step)
                .map(|i| (i as f64, i.to_string()))
                .collect(),
        ),
        series,
    }
}

/// Every plot of the reports: `(file name, SVG)`.
pub fn plots(reports: &[Value]) -> Vec<(&'static str, String)> {
    let mut out = vec![(
        "throughput-vs-sessions.svg",
        throughput_vs_sessions(reports).svg(),
    )];
    if let Some(first) = reports.first() {
        out.push(("latency-percentiles.svg", latency_percentiles(first).svg()));
        out.push(("setup-rate.svg", setup_rate(first).svg()));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn tick_steps_are_one_two_five() {
        assert_eq!(tick_step(100.0, 5.0), 20.0);
        assert_eq!(tick_step(1.0, 5.0), 0.2);
        assert_eq!(tick_step(730_000.0, 5.0), 200_000.0);
        assert_eq!(tick_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn charts_come_from_a_compare_report() {
        let rep = serde_json::json!({
            "sessions": 50,
            "lnses": [
                {"lns": "l2tpns", "setup": {"setup_timeline": [30, 20]},
                 "runs": [{"direction": "up", "forwarded_pps": 1000.0,
                           "traffic": {"up": {"latency": {"p50_us": 10.0, "p90_us": 20.0,
                               "p99_us": 30.0, "p999_us": 40.0, "max_us": 50.0}}}}]},
                {"lns": "xlns", "setup": {"setup_timeline": [50]},
                 "runs": [{"direction": "up", "forwarded_pps": 3000.0,
                           "traffic": {"up": {"latency": {"p50_us": 5.0}}}}]}
            ]
        });
        let mut rep2 = rep.clone();
        rep2["sessions"] = serde_json::json!(500);
        let t = throughput_vs_sessions(&[rep2, rep.clone()]);
        assert_eq!(t.series.len(), 2);
        assert_eq!(t.series[1].name, "xlns up");
        let (l50, l500) = (50f64.log10(), 500f64.log10());
        assert_eq!(t.series[1].points, vec![(l50, 3000.0), (l500, 3000.0)]);
        assert_eq!(t.x_ticks.as_ref().unwrap()[1], (l500, "500".to_owned()));
        let l = latency_percentiles(&rep);
        assert_eq!(l.series[0].points.len(), 5);
        assert_eq!(l.series[1].points, vec![(0.0, 5.0)]);
        let s = setup_rate(&rep);
        assert_eq!(s.series[0].points, vec![(1.0, 30.0), (2.0, 20.0)]);
        let svg = t.svg();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("xlns up") && svg.matches("<polyline").count() == 2);
        assert_eq!(plots(&[rep]).len(), 3);
    }
}
