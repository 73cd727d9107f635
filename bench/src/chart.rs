//! The charts of the reports, as SVG, drawn with plotters: bars for the
//! connection rates (rate.svg), and lines against the number of clients,
//! on log scales, for the scaling run (scale-memory.svg, scale-latency.svg).

use anyhow::{anyhow, Result};
use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// One bar: a name, its median, and the lowest and highest run.
pub struct Bar<'a> {
    pub name: &'a str,
    pub median: f64,
    pub low: f64,
    pub high: f64,
}

/// A horizontal bar per server (the median), with a black line from the
/// lowest to the highest run. Returns the SVG text.
pub fn bars(title: &str, bars: &[Bar]) -> Result<String> {
    let mut svg = String::new();
    {
        let height = 80 + 32 * bars.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (800, height)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let max = bars.iter().map(|b| b.high).fold(1.0, f64::max) * 1.1;
        // The first bar at the top: bar n is drawn at segment top - n.
        // (plotters' integer ranges include their end.)
        let top = bars.len().saturating_sub(1) as u32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(190)
            .build_cartesian_2d(0.0..max, (0..top).into_segmented())
            .map_err(drawing)?;
        let name = |value: &SegmentValue<u32>| match value {
            SegmentValue::CenterOf(n) | SegmentValue::Exact(n) => {
                bars.get((top - n.min(&top)) as usize).map_or(String::new(), |b| b.name.to_string())
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(bars.len())
            .y_label_formatter(&name)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(drawing)?;
        let blue = RGBColor(74, 122, 181);
        chart
            .draw_series(bars.iter().enumerate().map(|(n, bar)| {
                let n = top - n as u32;
                let mut rect = Rectangle::new(
                    [(0.0, SegmentValue::Exact(n)), (bar.median, SegmentValue::Exact(n + 1))],
                    blue.filled(),
                );
                rect.set_margin(5, 5, 0, 0);
                rect
            }))
            .map_err(drawing)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(n, bar)| {
                let at = SegmentValue::CenterOf(top - n as u32);
                PathElement::new(vec![(bar.low, at.clone()), (bar.high, at)], BLACK.stroke_width(2))
            }))
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

/// One line of a chart: a name and its points (x, y).
pub struct Line<'a> {
    pub name: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Lines against a log scale of x (the number of clients), y on a log
/// scale too, one colour per line, with a legend (`legend`: where it
/// hides the least). Lines without points are left out. Returns the SVG.
pub fn lines(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    legend: SeriesLabelPosition,
    lines: &[Line],
) -> Result<String> {
    let lines: Vec<&Line> = lines.iter().filter(|l| !l.points.is_empty()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 520)).into_drawing_area();
        root.fill(&WHITE).map_err(drawing)?;
        let all = || lines.iter().flat_map(|l| l.points.iter().copied());
        let x_max = all().map(|(x, _)| x).fold(10.0, f64::max) * 1.5;
        let x_min = all().map(|(x, _)| x).fold(x_max, f64::min).max(1.0) / 1.5;
        let y_max = all().map(|(_, y)| y).fold(1.0, f64::max) * 2.0;
        let y_min = all().map(|(_, y)| y).filter(|y| *y > 0.0).fold(y_max, f64::min) / 2.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
            .map_err(drawing)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y}"))
            .draw()
            .map_err(drawing)?;
        for (n, line) in lines.iter().enumerate() {
            let colour = Palette99::pick(n).to_rgba();
            let points: Vec<(f64, f64)> = line.points.iter().copied().filter(|(_, y)| *y > 0.0).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(drawing)?
                .label(line.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            chart
                .draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour.filled())))
                .map_err(drawing)?;
        }
        chart
            .configure_series_labels()
            .position(legend)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(drawing)?;
        root.present().map_err(drawing)?;
    }
    Ok(svg)
}

fn drawing(err: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing the chart: {err}")
}
