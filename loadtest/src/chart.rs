//! The optional PNG chart of a run: received bitrate, packet loss and the server's CPU, per
//! second. Text needs a TrueType font; the usual Debian ones are tried.

use std::path::Path;

use anyhow::{Context, bail};
use plotters::prelude::*;

use crate::report::Report;

const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Per-second series from the cumulative samples: (t, Mbit/s, loss %, server CPU % of a core).
pub fn series(report: &Report) -> Vec<(f64, f64, f64, Option<f64>)> {
    report
        .samples
        .windows(2)
        .map(|w| {
            let dt = (w[1].t - w[0].t).max(1e-3);
            let bytes = w[1].bytes_received.saturating_sub(w[0].bytes_received);
            let got = w[1].packets_received.saturating_sub(w[0].packets_received);
            let lost = w[1].packets_lost.saturating_sub(w[0].packets_lost);
            let loss = if got + lost > 0 { lost as f64 * 100.0 / (got + lost) as f64 } else { 0.0 };
            let cpu = match (w[0].server_cpu_seconds, w[1].server_cpu_seconds) {
                (Some(a), Some(b)) => Some((b - a) / dt * 100.0),
                _ => None,
            };
            (w[1].t, bytes as f64 * 8.0 / dt / 1e6, loss, cpu)
        })
        .collect()
}

pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let font = FONTS.iter().find_map(|f| std::fs::read(f).ok()).context("no TrueType font found for the chart (install fonts-dejavu-core)")?;
    if plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into_boxed_slice())).is_err() {
        bail!("the chart font could not be loaded");
    }
    let points = series(report);
    if points.is_empty() {
        bail!("the run was too short for a chart");
    }
    let t_max = points.last().map(|p| p.0).unwrap_or(1.0).max(1.0);
    let root = BitMapBackend::new(path, (1000, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((3, 1));
    let title = format!("{}: {} participants", report.label, report.participants);
    let plot = |area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>, caption: String, unit: &str, values: Vec<(f64, f64)>, floor: f64, color: RGBColor| -> anyhow::Result<()> {
        let y_max = values.iter().map(|v| v.1).fold(0.0f64, f64::max).max(floor) * 1.15;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("seconds").y_desc(unit).label_style(("sans-serif", 13)).draw()?;
        chart.draw_series(LineSeries::new(values, color.stroke_width(2)))?;
        Ok(())
    };
    plot(&panels[0], format!("{title}: received bitrate"), "Mbit/s", points.iter().map(|p| (p.0, p.1)).collect(), 0.1, BLUE)?;
    plot(&panels[1], "packet loss".into(), "%", points.iter().map(|p| (p.0, p.2)).collect(), 1.0, RED)?;
    plot(&panels[2], "server CPU".into(), "% of a core", points.iter().filter_map(|p| p.3.map(|c| (p.0, c))).collect(), 1.0, GREEN)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Sample;

    #[test]
    fn series_and_png() {
        let mut r = Report::new("test".into());
        for i in 0..5u64 {
            r.samples.push(Sample {
                t: i as f64,
                bytes_received: i * 125_000,
                packets_received: i * 100,
                packets_lost: i,
                server_cpu_seconds: Some(i as f64 * 0.1),
                server_rss_bytes: Some(1),
            });
        }
        let s = series(&r);
        assert_eq!(s.len(), 4);
        assert!((s[0].1 - 1.0).abs() < 1e-9 && (s[0].2 - 100.0 / 101.0).abs() < 1e-9 && (s[0].3.unwrap_or(0.0) - 10.0).abs() < 1e-9, "{s:?}");
        let path = std::env::temp_dir().join(format!("jiefen-chart-{}.png", std::process::id()));
        draw(&r, &path).expect("chart drawn");
        let png = std::fs::read(&path).expect("png");
        let _ = std::fs::remove_file(&path);
        assert!(png.starts_with(b"\x89PNG") && png.len() > 5000, "{} bytes", png.len());
    }
}
