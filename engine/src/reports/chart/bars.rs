//! Horizontal bars, one per value of the first group: stacked by the second group's values
//! (named in a legend) when the report has two groups, and centred as a funnel that shows
//! how much of each stage reaches the next.

use std::fmt::Write;

use super::{Drawing, FONT, Figure, Figures, SMALL, WIDTH, colour, compact, escape, label, legend, percent};

const BAR_HEIGHT: f64 = 22.0;
const GAP: f64 = 8.0;
/// Between a funnel's bars: room for the conversion to the next stage.
const FUNNEL_GAP: f64 = 22.0;
const LABEL_WIDTH: f64 = 150.0;
const VALUE_WIDTH: f64 = 90.0;
/// The length of the longest bar.
const ROOM: f64 = WIDTH - LABEL_WIDTH - VALUE_WIDTH;

/// A bar per category, its segments as long as the series' values, the category's total at
/// its end. Stacking has no place for a negative or zero value: those segments are left out,
/// while the total still counts them.
pub(super) fn stacked(figures: &Figures, locale: &str) -> Drawing {
    let positive = |c: usize| figures.cells[c].iter().flatten().map(|f| f.value.max(0.0)).sum::<f64>();
    let largest = (0..figures.categories.len()).map(positive).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let mut body = String::new();
    for (c, category) in figures.categories.iter().enumerate() {
        let y = GAP + c as f64 * (BAR_HEIGHT + GAP);
        let baseline = y + BAR_HEIGHT / 2.0 + 4.5;
        body.push_str(r#"<g class="chart-bar">"#);
        body += &label(LABEL_WIDTH - 8.0, baseline, "end", FONT, category, LABEL_WIDTH - 12.0);
        let mut x = LABEL_WIDTH;
        for (s, figure) in figures.cells[c].iter().enumerate() {
            let Some(figure) = figure.as_ref().filter(|f| f.value > 0.0) else { continue };
            let width = figure.value / largest * ROOM;
            let segment = format!(
                r#"<rect class="chart-segment" x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR_HEIGHT}" style="fill: {fill}"><title>{name}: {exact}</title></rect>"#,
                fill = colour(s),
                name = escape(&figures.name(c, s)),
                exact = escape(&figure.exact),
            );
            body += &figures.linked(c, s, segment);
            x += width;
        }
        let total = figures.total(c).map_or_else(|| "—".to_owned(), |t| compact(t.value, locale));
        body += &label(x + 6.0, baseline, "start", FONT, &total, VALUE_WIDTH - 6.0);
        body.push_str("</g>");
    }
    let mut height = GAP + figures.categories.len() as f64 * (BAR_HEIGHT + GAP);
    if figures.series.len() > 1 {
        let (names, taken) = legend(&figures.series, height);
        body += &names;
        height += taken + GAP;
    }
    Drawing { height, body }
}

/// The categories' totals as centred bars in the order of the rows, with `→ 45%` between two
/// bars: the share of a stage's value that the next one holds; and under a stage's value the
/// average days records stayed in it, when the result carries them.
pub(super) fn funnel(figures: &Figures, locale: &str) -> Drawing {
    let totals: Vec<Option<Figure>> = (0..figures.categories.len()).map(|c| figures.total(c)).collect();
    let days: Vec<Option<String>> = figures
        .days
        .iter()
        .map(|d| {
            d.as_deref().map(|d| match locale {
                "zh-CN" => format!("平均 {d} 天"),
                _ => format!("avg {d} days"),
            })
        })
        .collect();
    let with_days = days.iter().any(Option::is_some);
    // `avg 12.5 days` is wider than a value: the bars give up some of their length for it.
    let value_width = if with_days { VALUE_WIDTH + 40.0 } else { VALUE_WIDTH };
    let room = WIDTH - LABEL_WIDTH - value_width;
    let value = |c: usize| totals[c].as_ref().map_or(0.0, |t| t.value);
    let largest = (0..totals.len()).map(value).fold(0.0, f64::max).max(f64::MIN_POSITIVE);
    let step = BAR_HEIGHT + FUNNEL_GAP;
    let mut body = String::new();
    for (c, category) in figures.categories.iter().enumerate() {
        let y = GAP + c as f64 * step;
        let baseline = y + BAR_HEIGHT / 2.0 + 4.5;
        let width = (value(c).max(0.0) / largest * room).max(1.0);
        let shown = totals[c].as_ref().map_or_else(|| "—".to_owned(), |t| compact(t.value, locale));
        let stay = days.get(c).and_then(Option::as_deref).map(escape);
        let mut bar = format!(
            r#"<g class="chart-bar"><title>{name}: {exact}{stay_title}</title>{text}<rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR_HEIGHT}" rx="3" style="fill: {fill}"/>{shown}"#,
            name = escape(category),
            exact = escape(totals[c].as_ref().map_or("—", |t| &t.exact)),
            stay_title = stay.as_ref().map_or_else(String::new, |s| format!(" · {s}")),
            text = label(LABEL_WIDTH - 8.0, baseline, "end", FONT, category, LABEL_WIDTH - 12.0),
            x = LABEL_WIDTH + (room - width) / 2.0,
            fill = colour(0),
            shown = label(WIDTH - value_width + 6.0, baseline, "start", FONT, &shown, value_width - 6.0),
        );
        if let Some(stay) = stay {
            let _ = write!(
                bar,
                r#"<text class="chart-days" x="{x:.1}" y="{y:.1}" font-size="{SMALL}" fill="currentColor" fill-opacity="0.75">{stay}</text>"#,
                x = WIDTH - value_width + 6.0,
                y = baseline + SMALL + 3.0,
            );
        }
        bar.push_str("</g>");
        body += &figures.linked_category(c, bar);
        if let Some(next) = totals.get(c + 1) {
            let conversion = match next {
                Some(next) if value(c) > 0.0 => percent(next.value / value(c)),
                _ => "—".to_owned(),
            };
            let _ = write!(
                body,
                r#"<text class="chart-conversion" x="{x}" y="{y:.1}" text-anchor="middle" font-size="{SMALL}" fill="currentColor" fill-opacity="0.75">→ {conversion}</text>"#,
                x = LABEL_WIDTH + room / 2.0,
                y = y + BAR_HEIGHT + FUNNEL_GAP / 2.0 + 4.0,
            );
        }
    }
    // The last stage's days take the room under it that a gap gives the others'.
    let under_last = if with_days { SMALL } else { 0.0 };
    let height = GAP + figures.categories.len() as f64 * step - FUNNEL_GAP + GAP + under_last;
    Drawing { height, body }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::super::draw;
    use super::super::tests::{attributes, report};
    use super::*;

    #[test]
    fn bars_are_as_long_as_their_values() {
        for chart in ["bar", "table", "stacked_bar"] {
            let svg =
                draw(&report(chart, "商机", &[("谈判", None, json!("2000.00")), ("赢单", None, json!(1000))]), "zh-CN");
            assert_eq!(svg.matches(r#"class="chart-bar""#).count(), 2, "{svg}");
            let widths = attributes(&svg, "chart-segment", "width");
            assert_eq!(widths, [ROOM, ROOM / 2.0], "{chart}: {svg}");
            assert!(svg.contains("<title>谈判: 2000.00</title>") && svg.contains("<title>赢单: 1000</title>"), "{svg}");
            assert!(!svg.contains("var(--chart-2"), "one series, one colour and no legend: {svg}");
        }
    }

    #[test]
    fn stacked_segments_share_their_bar_by_value() {
        let rows = [
            ("一月", Some("华东"), json!("300.00")),
            ("一月", Some("华南"), json!("100.00")),
            ("二月", Some("华东"), json!("100.00")),
            ("二月", Some("华北"), json!(-50)),
        ];
        for chart in ["stacked_bar", "bar"] {
            let svg = draw(&report(chart, "按月", &rows), "zh-CN");
            assert_eq!(svg.matches(r#"class="chart-bar""#).count(), 2, "one bar per month: {svg}");
            let widths = attributes(&svg, "chart-segment", "width");
            // January is the longest stack: 300 + 100 fill the room 3:1; February's 100 is a quarter
            // of it and its negative value has no segment.
            assert_eq!(widths, [ROOM * 0.75, ROOM * 0.25, ROOM * 0.25], "{svg}");
            let xs = attributes(&svg, "chart-segment", "x");
            assert_eq!(xs[1], xs[0] + widths[0], "the second segment starts where the first ends");
            assert!(svg.contains("<title>一月 · 华南: 100.00</title>"), "{svg}");
            assert!(svg.contains(">400</text>") && svg.contains(">50</text>"), "totals at the bars' ends: {svg}");
            for (i, region) in ["华东", "华南", "华北"].iter().enumerate() {
                let swatch = format!("fill: var(--chart-{}", i + 1);
                let legend = &svg[svg.rfind(&swatch).unwrap_or_else(|| panic!("{swatch}: {svg}"))..];
                let name = &legend[..legend.find("</text>").unwrap()];
                assert!(name.ends_with(&format!(">{region}")), "the legend names {region}: {svg}");
            }
        }
    }

    #[test]
    fn a_funnel_shows_the_conversion_between_stages() {
        let rows = [
            ("线索", None, json!(200)),
            ("方案", None, json!(100)),
            ("赢单", None, json!(45)),
            ("回款", None, json!(0)),
            ("续约", None, json!(3)),
        ];
        let svg = draw(&report("funnel", "漏斗", &rows), "zh-CN");
        assert_eq!(svg.matches(r#"class="chart-bar""#).count(), 5, "{svg}");
        let conversions: Vec<&str> = svg
            .split(r#"class="chart-conversion""#)
            .skip(1)
            .map(|t| t.split('>').nth(1).unwrap().trim_end_matches("</text"))
            .collect();
        assert_eq!(conversions, ["→ 50%", "→ 45%", "→ 0%", "→ —"], "{svg}");
        let centre = |x: f64, width: f64| x + width / 2.0;
        let bars: Vec<(f64, f64)> = svg
            .split("<rect ")
            .skip(1)
            .map(|r| {
                let number = |name: &str| -> f64 {
                    r.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
                };
                (number("x"), number("width"))
            })
            .collect();
        assert_eq!(bars[0].1, ROOM);
        assert_eq!(bars[1].1, ROOM / 2.0);
        assert!(bars.iter().all(|&(x, w)| (centre(x, w) - centre(bars[0].0, bars[0].1)).abs() < 0.1), "{bars:?}");
    }

    #[test]
    fn a_funnel_shows_the_days_in_each_stage_under_its_value() {
        let rows = [("线索", None, json!(200)), ("方案", None, json!(100)), ("赢单", None, json!(45))];
        let mut result = report("funnel", "漏斗", &rows);
        for (row, days) in
            result["rows"].as_array_mut().unwrap().iter_mut().zip([json!("3.5"), json!("12.0"), Json::Null])
        {
            row["days_in_stage"] = days;
        }
        let texts = |svg: &str| -> Vec<String> {
            svg.split(r#"class="chart-days""#)
                .skip(1)
                .map(|t| t.split('>').nth(1).unwrap().trim_end_matches("</text").to_owned())
                .collect()
        };
        let svg = draw(&result, "zh-CN");
        assert_eq!(texts(&svg), ["平均 3.5 天", "平均 12.0 天"], "none where no deal left the stage: {svg}");
        assert!(
            svg.contains("<title>线索: 200 · 平均 3.5 天</title>") && svg.contains("<title>赢单: 45</title>"),
            "{svg}"
        );
        let en = draw(&result, "en");
        assert_eq!(texts(&en), ["avg 3.5 days", "avg 12.0 days"], "{en}");
        assert!(en.contains("<title>方案: 100 · avg 12.0 days</title>"), "{en}");
        // The days fit right of the bars and inside the frame, the last one too.
        let (xs, ys) = (attributes(&en, "chart-days", "x"), attributes(&en, "chart-days", "y"));
        let widest = super::super::text_width("avg 123.5 days", SMALL);
        assert!(xs.iter().all(|x| x + widest <= WIDTH), "{en}");
        let bar_ends: Vec<f64> = en
            .split("<rect ")
            .skip(1)
            .map(|r| {
                let number = |name: &str| -> f64 {
                    r.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().parse().unwrap()
                };
                number("x") + number("width")
            })
            .collect();
        assert!(bar_ends.iter().all(|end| xs.iter().all(|x| end < x)), "the bars end before the days: {en}");
        let height: f64 = en.split("viewBox=\"0 0 640 ").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
        assert!(ys.iter().all(|y| y + 4.0 <= height), "{en}");
        assert!(!draw(&report("funnel", "漏斗", &rows), "en").contains("chart-days"), "no days, no line");
    }
}
