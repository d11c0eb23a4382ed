//! Lines: the first group along the x axis in the order of the rows (a month or week bucket
//! comes ordered by its key), the first measure up the y axis over a few gridlines, one line
//! per value of the second group with a legend.

use std::fmt::Write;

use super::{Drawing, Figures, SMALL, WIDTH, colour, compact, escape, fit, label, legend, text_width};

const HEIGHT: f64 = 280.0;
/// Room for the y axis' numbers on the left, the x axis' labels below.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = HEIGHT - 34.0;
/// Keeps the first and last points off the plot's edges.
const INSET: f64 = 14.0;

pub(super) fn draw(figures: &Figures, locale: &str) -> Drawing {
    let values = figures.cells.iter().flatten().flatten().map(|f| f.value);
    let (low, high) = values.fold((0.0_f64, 0.0_f64), |(low, high), v| (low.min(v), high.max(v)));
    let ticks = ticks(low, if high > low { high } else { low + 1.0 });
    let (bottom, top) = (ticks[0], ticks[ticks.len() - 1]);
    let y = |value: f64| BOTTOM - (value - bottom) / (top - bottom) * (BOTTOM - TOP);
    let count = figures.categories.len();
    let spacing = if count > 1 { (WIDTH - LEFT - RIGHT - 2.0 * INSET) / (count - 1) as f64 } else { 0.0 };
    let x = |category: usize| match count {
        1 => (LEFT + WIDTH - RIGHT) / 2.0,
        _ => LEFT + INSET + category as f64 * spacing,
    };

    let mut body = String::new();
    for tick in &ticks {
        let _ = write!(
            body,
            r#"<line x1="{LEFT}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="currentColor" stroke-opacity="{opacity}"/>{text}"#,
            x2 = WIDTH - RIGHT,
            y = y(*tick),
            opacity = if *tick == 0.0 { 0.45 } else { 0.15 },
            text = label(LEFT - 6.0, y(*tick) + 4.0, "end", SMALL, &compact(*tick, locale), LEFT - 8.0),
        );
    }
    // Label every `every`th category, as many as fit side by side.
    let widest = figures.categories.iter().map(|c| text_width(c, SMALL)).fold(0.0, f64::max).min(110.0);
    let every = if count > 1 { ((widest + 8.0) / spacing).ceil().max(1.0) as usize } else { 1 };
    let room = if count > 1 { spacing * every as f64 - 8.0 } else { WIDTH - LEFT - RIGHT };
    for (c, category) in figures.categories.iter().enumerate().step_by(every) {
        // The first and last labels move inwards rather than run off the edge.
        let half = text_width(&fit(category, room, SMALL), SMALL) / 2.0;
        body += &label(x(c).clamp(4.0 + half, WIDTH - 4.0 - half), BOTTOM + 20.0, "middle", SMALL, category, room);
    }
    for s in 0..figures.series.len() {
        let points: Vec<(usize, &super::Figure)> =
            figures.cells.iter().enumerate().filter_map(|(c, row)| Some((c, row[s].as_ref()?))).collect();
        let path: Vec<String> = points.iter().map(|(c, f)| format!("{:.1},{:.1}", x(*c), y(f.value))).collect();
        let _ = write!(
            body,
            r#"<polyline class="chart-line" points="{}" fill="none" stroke-width="2.5" stroke-linejoin="round" style="stroke: {}"/>"#,
            path.join(" "),
            colour(s)
        );
        for (c, figure) in points {
            let _ = write!(
                body,
                r#"<circle class="chart-point" cx="{cx:.1}" cy="{cy:.1}" r="4" style="fill: {fill}"><title>{name}: {exact}</title></circle>"#,
                cx = x(c),
                cy = y(figure.value),
                fill = colour(s),
                name = escape(&figures.name(c, s)),
                exact = escape(&figure.exact),
            );
        }
    }
    let mut height = HEIGHT;
    if figures.series.len() > 1 {
        let (names, taken) = legend(&figures.series, height);
        body += &names;
        height += taken + 8.0;
    }
    Drawing { height, body }
}

/// About five round values (steps of 1, 2 or 5 times a power of ten) from at or below `low`
/// to at or above `high`.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let rough = (high - low) / 4.0;
    let power = 10_f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * power).find(|s| *s >= rough).unwrap_or(10.0 * power);
    let (first, last) = ((low / step).floor() as i64, (high / step).ceil() as i64);
    (first..=last).map(|i| i as f64 * step).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draw;
    use super::super::tests::{attributes, report};
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        assert_eq!(ticks(0.0, 30.0), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(ticks(0.0, 1.0), [0.0, 0.5, 1.0]);
        assert_eq!(ticks(-120.0, 380.0), [-200.0, 0.0, 200.0, 400.0]);
        assert_eq!(ticks(0.0, 45_000.0), [0.0, 20_000.0, 40_000.0, 60_000.0]);
    }

    #[test]
    fn points_go_along_x_in_row_order_and_up_with_their_value() {
        let rows =
            [("2026-10", None, json!("10.00")), ("2026-11", None, json!("30.00")), ("2026-12", None, json!("20.00"))];
        let svg = draw(&report("line", "月度", &rows), "zh-CN");
        let xs = attributes(&svg, "chart-point", "cx");
        let ys = attributes(&svg, "chart-point", "cy");
        assert_eq!(xs.len(), 3, "{svg}");
        assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
        assert!(ys[1] < ys[2] && ys[2] < ys[0], "30 highest, then 20, then 10: {ys:?}");
        // 0 to 30 in tens: 20 sits two thirds of the way up.
        assert!(((BOTTOM - ys[2]) / (BOTTOM - TOP) - 2.0 / 3.0).abs() < 0.01, "{ys:?}");
        assert!(svg.contains("<title>2026-11: 30.00</title>") && svg.contains(">2026-12</text>"), "{svg}");
        assert_eq!(svg.matches(r#"class="chart-line""#).count(), 1);
        for tick in [">0</text>", ">10</text>", ">20</text>", ">30</text>"] {
            assert!(svg.contains(tick), "{tick}: {svg}");
        }
    }

    #[test]
    fn a_second_group_draws_a_line_each_with_a_legend() {
        let rows = [
            ("2026-11", Some("华东"), json!(12_000)),
            ("2026-11", Some("华南"), json!(30_000)),
            ("2026-12", Some("华东"), json!(45_000)),
        ];
        let svg = draw(&report("line", "月度", &rows), "zh-CN");
        assert_eq!(svg.matches(r#"class="chart-line""#).count(), 2, "{svg}");
        assert_eq!(attributes(&svg, "chart-point", "cx").len(), 3, "华南 has no December point");
        assert!(svg.contains("<title>2026-12 · 华东: 45000</title>"), "{svg}");
        assert!(svg.contains(">4万</text>") && svg.contains(">华南</text>"), "axis in 万 and a legend: {svg}");
    }

    #[test]
    fn many_categories_label_every_few() {
        let months: Vec<String> =
            (1..=36).map(|m| format!("{}-{:02}", 2024 + (m - 1) / 12, (m - 1) % 12 + 1)).collect();
        let rows: Vec<_> = months.iter().map(|m| (m.as_str(), None, json!(1))).collect();
        let svg = draw(&report("line", "t", &rows), "en");
        let labelled = months.iter().filter(|m| svg.contains(&format!(">{m}</text>"))).count();
        assert!(labelled > 4 && labelled < 36, "{labelled}");
        assert!(svg.contains(">2024-01</text>") && !svg.contains('…'), "{svg}");
    }
}
