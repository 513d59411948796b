//! The PNG beside the JSON: latency percentiles (p50, p90, p99, p99.9; medians over the runs) of
//! every path, one panel per backend, log scale, titled with the commit and the date.
//!
//! plotters draws text with ab_glyph from a TrueType file read at run time (no fontconfig or
//! freetype): `GATEWAY_BENCH_FONT`, else the first of [`FONTS`] that exists.

use std::path::Path;

use plotters::{prelude::*, style::FontStyle};

use crate::report::{BackendReport, Meta};

/// Where Debian (fonts-dejavu-core, fonts-liberation) and Fedora keep a sans-serif TrueType font.
const FONTS: [&str; 4] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];
/// One panel's size in pixels (panels are stacked, one per backend): the chart on the left, the
/// legend (ten paths) beside it, so no line hides behind it.
const PANEL: (u32, u32) = (1100, 520);
/// The chart's share of a panel's width; the legend has the rest.
const CHART_WIDTH: u32 = 760;
/// Height of the title lines above the panels.
const HEADER: u32 = 64;
const PERCENTILES: [&str; 4] = ["p50", "p90", "p99", "p99.9"];

/// Registers the font as plotters' "sans-serif".
fn load_font() -> anyhow::Result<()> {
    let path = std::env::var("GATEWAY_BENCH_FONT")
        .ok()
        .or_else(|| {
            FONTS
                .iter()
                .find(|f| Path::new(f).exists())
                .map(|f| (*f).to_owned())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no TrueType font for the PNG: install fonts-dejavu-core or set \
                 GATEWAY_BENCH_FONT to a .ttf file"
            )
        })?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(&path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a TrueType font"))
}

pub fn write_png(path: &Path, report: &[BackendReport], meta: &Meta) -> anyhow::Result<()> {
    load_font()?;
    let panels = u32::try_from(report.len().max(1))?;
    let root = BitMapBackend::new(path, (PANEL.0, HEADER + PANEL.1 * panels)).into_drawing_area();
    drawn(root.fill(&WHITE))?;
    let (header, body) = root.split_vertically(HEADER);
    let title = ("sans-serif", 18).into_font();
    drawn(header.draw(&Text::new(meta.title(), (12, 10), title)))?;
    let (status, color) = if meta.unreliable.is_empty() {
        (
            "the machine was quiet during every window".to_owned(),
            BLACK,
        )
    } else {
        let status = format!(
            "UNRELIABLE (--force; {} problems, the first: {}): the figures mean little",
            meta.unreliable.len(),
            meta.unreliable[0].split(';').next().unwrap_or_default()
        );
        (status, RED)
    };
    let status_font = ("sans-serif", 16).into_font().color(&color);
    drawn(header.draw(&Text::new(status, (12, 36), status_font)))?;
    for (area, r) in body
        .split_evenly((report.len().max(1), 1))
        .iter()
        .zip(report)
    {
        panel(area, r)?;
    }
    drawn(root.present())
}

/// plotters' errors, as text (their types depend on the backend).
fn drawn<T, E: std::fmt::Display>(result: Result<T, E>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("drawing the PNG: {e}"))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn panel(area: &Area<'_>, r: &BackendReport) -> anyhow::Result<()> {
    let (area, legend) = area.split_horizontally(CHART_WIDTH);
    let paths: Vec<(String, [f64; 4])> = r
        .paths()
        .into_iter()
        .map(|(name, figure, _)| (name, figure.percentiles()))
        .collect();
    let values = paths
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0);
    let (low, high) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if low <= high {
        (low, high)
    } else {
        (0.1, 10.0)
    };
    let mut chart = drawn(
        ChartBuilder::on(&area)
            .caption(
                format!(
                    "backend {}: latency percentiles per path (ms, log scale)",
                    r.backend
                ),
                ("sans-serif", 17),
            )
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.2f64..3.2f64, (low * 0.8..high * 1.25).log_scale()),
    )?;
    drawn(
        chart
            .configure_mesh()
            .x_labels(PERCENTILES.len())
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && (0.0..4.0).contains(&i) {
                    PERCENTILES[i as usize].to_owned()
                } else {
                    String::new()
                }
            })
            .y_desc("ms")
            .draw(),
    )?;
    for (i, (name, percentiles)) in paths.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = percentiles
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(x, &v)| (x as f64, v))
            .collect();
        drawn(chart.draw_series(LineSeries::new(points.clone(), color.stroke_width(2))))?;
        drawn(
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            ),
        )?;
        // The legend, beside the chart.
        let y = 60 + 24 * i32::try_from(i)?;
        drawn(legend.draw(&PathElement::new(
            vec![(4, y), (28, y)],
            color.stroke_width(3),
        )))?;
        drawn(legend.draw(&Text::new(
            name.clone(),
            (34, y - 8),
            ("sans-serif", 14).into_font(),
        )))?;
    }
    Ok(())
}
