//! Pies and donuts: a slice per value of the first group as large as its share of the first
//! measure, a legend with each share and value beside it; a donut shows the total in its hole.
//! A share of a whole has no room for a negative or zero value: those are left out, and the
//! total is the sum of the slices drawn.

use std::f64::consts::{PI, TAU};
use std::fmt::Write;

use super::{Drawing, FONT, Figure, Figures, SMALL, WIDTH, colour, compact, escape, label, no_data, percent};

const CX: f64 = 150.0;
const CY: f64 = 150.0;
const RADIUS: f64 = 120.0;
/// A donut's hole, as a share of the radius.
const HOLE: f64 = 0.58;
const LEGEND_X: f64 = 300.0;
const ROW: f64 = 24.0;

pub(super) fn draw(figures: &Figures, locale: &str, donut: bool) -> Drawing {
    let slices: Vec<(usize, &String, Figure)> = (0..figures.categories.len())
        .filter_map(|c| Some((c, &figures.categories[c], figures.total(c).filter(|t| t.value > 0.0)?)))
        .collect();
    let Some(total) = Figure::sum(slices.iter().map(|(_, _, f)| f)) else { return no_data(locale) };
    let inner = if donut { RADIUS * HOLE } else { 0.0 };
    let legend_top = (CY - slices.len() as f64 * ROW / 2.0).max(8.0);
    let mut body = String::new();
    let mut start = -PI / 2.0;
    for (i, (c, name, figure)) in slices.iter().enumerate() {
        let share = figure.value / total.value;
        let end = start + share * TAU;
        let path = format!(
            r#"<path class="chart-slice" d="{d}" data-share="{share}" fill-rule="evenodd" style="fill: {fill}; stroke: var(--surface, #fff); stroke-width: 1"><title>{title}: {exact} ({percent})</title></path>"#,
            d = slice(start, end, inner),
            share = format!("{share:.4}").trim_end_matches('0').trim_end_matches('.'),
            fill = colour(i),
            title = escape(name),
            exact = escape(&figure.exact),
            percent = percent(share),
        );
        body += &figures.linked_category(*c, path);
        let y = legend_top + i as f64 * ROW;
        let figures = format!("{} · {}", percent(share), compact(figure.value, locale));
        let _ = write!(
            body,
            r#"<rect x="{LEGEND_X}" y="{sy:.1}" width="12" height="12" rx="2" style="fill: {fill}"/>{name}{figures}"#,
            sy = y + (ROW - 12.0) / 2.0,
            fill = colour(i),
            name = label(LEGEND_X + 18.0, y + ROW / 2.0 + 4.5, "start", FONT, name, 180.0),
            figures = label(WIDTH - 8.0, y + ROW / 2.0 + 4.5, "end", SMALL, &figures, 120.0),
        );
        start = end;
    }
    if donut {
        let _ = write!(
            body,
            r#"<text class="chart-total" x="{CX}" y="{y}" text-anchor="middle" font-size="24" font-weight="600" fill="currentColor"><title>{exact}</title>{shown}</text>"#,
            y = CY + 8.0,
            exact = escape(&total.exact),
            shown = escape(&compact(total.value, locale)),
        );
    }
    let height = (2.0 * CY).max(legend_top + slices.len() as f64 * ROW + 8.0);
    Drawing { height, body }
}

/// The outline of a slice from angle `start` to `end` (radians, clockwise from the x axis),
/// a wedge or, with an `inner` radius, a piece of ring.
fn slice(start: f64, end: f64, inner: f64) -> String {
    let at = |angle: f64, r: f64| format!("{:.1},{:.1}", CX + r * angle.cos(), CY + r * angle.sin());
    if end - start >= TAU - 1e-9 {
        // A whole circle is no arc: two halves, and the hole cut out by the even-odd rule.
        let circle = |r: f64| {
            format!(
                "M{} A{r:.1},{r:.1} 0 1 1 {} A{r:.1},{r:.1} 0 1 1 {} Z",
                at(start, r),
                at(start + PI, r),
                at(start, r)
            )
        };
        return if inner > 0.0 { format!("{} {}", circle(RADIUS), circle(inner)) } else { circle(RADIUS) };
    }
    let large = u8::from(end - start > PI);
    let outer = format!("A{RADIUS},{RADIUS} 0 {large} 1 {}", at(end, RADIUS));
    if inner > 0.0 {
        let back = format!("A{inner:.1},{inner:.1} 0 {large} 0 {}", at(start, inner));
        format!("M{} {outer} L{} {back} Z", at(start, RADIUS), at(end, inner))
    } else {
        format!("M{CX},{CY} L{} {outer} Z", at(start, RADIUS))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draw;
    use super::super::tests::{attributes, report};
    use super::*;

    fn paths(svg: &str) -> Vec<&str> {
        svg.split(r#"class="chart-slice" d=""#).skip(1).map(|p| p.split('"').next().unwrap()).collect()
    }

    #[test]
    fn slices_are_as_large_as_their_share() {
        let rows = [
            ("华东", None, json!("100.00")),
            ("华南", None, json!("100.00")),
            ("华北", None, json!("200.00")),
            ("退款", None, json!("-50.00")),
            ("空", None, json!(null)),
        ];
        let svg = draw(&report("pie", "按区域", &rows), "zh-CN");
        assert_eq!(attributes(&svg, "chart-slice", "data-share"), [0.25, 0.25, 0.5], "{svg}");
        // From twelve o'clock clockwise: a quarter ends at three o'clock, half at six, the rest back at twelve.
        let ends: Vec<&str> = paths(&svg).iter().map(|d| d.rsplit(' ').nth(1).unwrap()).collect();
        assert_eq!(ends, ["270.0,150.0", "150.0,270.0", "150.0,30.0"], "{svg}");
        assert!(svg.contains("<title>华北: 200.00 (50%)</title>") && svg.contains(">50% · 200</text>"), "{svg}");
        assert!(!svg.contains("退款") && !svg.contains(">空<"), "no slice for negative or empty values: {svg}");
        assert!(!svg.contains("chart-total"), "a pie has no hole: {svg}");
    }

    #[test]
    fn a_donut_shows_its_total_in_the_hole() {
        let rows = [("华东", None, json!("30000.00")), ("华南", None, json!("10000.50"))];
        let svg = draw(&report("donut", "按区域", &rows), "zh-CN");
        assert_eq!(attributes(&svg, "chart-slice", "data-share"), [0.75, 0.25], "{svg}");
        assert!(svg.contains("<title>40000.5</title>4万</text>"), "{svg}");
        let hole = format!("{:.1}", RADIUS * HOLE);
        assert!(paths(&svg).iter().all(|d| d.contains(&format!("A{hole},{hole}"))), "ring pieces: {svg}");
    }

    #[test]
    fn one_slice_is_the_whole_circle() {
        for chart in ["pie", "donut"] {
            let svg = draw(&report(chart, "t", &[("all", None, json!(7))]), "en");
            assert_eq!(attributes(&svg, "chart-slice", "data-share"), [1.0], "{svg}");
            assert!(paths(&svg)[0].matches('A').count() >= 2, "{svg}");
            assert!(svg.contains(">100% · 7</text>"), "{svg}");
        }
        let nothing = draw(&report("pie", "t", &[("refunds", None, json!(-7))]), "en");
        assert!(nothing.contains(">No data</text>"), "{nothing}");
    }
}
