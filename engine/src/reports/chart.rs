//! Charts drawn on the server as SVG from a report's result: readable without JavaScript,
//! printable, and in the page's colours (the marks use `currentColor` and the theme's CSS
//! variables, with fallbacks for a file opened on its own). Numbers read the Chinese way on a
//! Chinese screen: 1.2万, 3.4亿.

use std::fmt::Write;

use serde_json::Value as Json;

/// The width the drawing is laid out in; the SVG scales to its container.
const WIDTH: f64 = 640.0;
const BAR_HEIGHT: f64 = 22.0;
const GAP: f64 = 8.0;
const LABEL_WIDTH: f64 = 150.0;
const VALUE_WIDTH: f64 = 90.0;

/// A number as a reader of `locale` says it: `12.3万` and `1.2亿` in Chinese, `12.3K`, `4.5M`,
/// `1.2B` in English; small numbers as they are, grouped by thousands.
pub fn compact(value: f64, locale: &str) -> String {
    let (sign, magnitude) = if value < 0.0 { ("-", -value) } else { ("", value) };
    let scaled = |divisor: f64, unit: &str| {
        let n = magnitude / divisor;
        let digits = if n >= 100.0 { 0 } else { 1 };
        let text = format!("{n:.digits$}");
        let text = text.strip_suffix(".0").unwrap_or(&text);
        format!("{sign}{text}{unit}")
    };
    match locale {
        "zh-CN" if magnitude >= 1e8 => scaled(1e8, "亿"),
        "zh-CN" if magnitude >= 1e4 => scaled(1e4, "万"),
        "zh-CN" => format!("{sign}{}", plain(magnitude)),
        _ if magnitude >= 1e9 => scaled(1e9, "B"),
        _ if magnitude >= 1e6 => scaled(1e6, "M"),
        _ if magnitude >= 1e4 => scaled(1e3, "K"),
        _ => format!("{sign}{}", plain(magnitude)),
    }
}

/// A small number with at most two decimals and no trailing zeros.
fn plain(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Text escaped for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The first group's label and the first measure's value of each row of a report's result.
fn series(result: &Json, locale: &str) -> Vec<(String, f64)> {
    result["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let label = row["labels"][0][locale].as_str().or_else(|| row["labels"][0]["en"].as_str()).unwrap_or("—");
            let value = match &row["values"][0] {
                Json::Number(n) => n.as_f64().unwrap_or(0.0),
                Json::String(s) => s.parse().unwrap_or(0.0),
                _ => 0.0,
            };
            (label.to_owned(), value)
        })
        .collect()
}

/// A horizontal bar chart of a report's first group and first measure (a funnel centres its
/// bars); each bar carries its exact value as a tooltip.
pub fn bars(result: &Json, locale: &str, funnel: bool) -> String {
    let data = series(result, locale);
    let height = (data.len().max(1) as f64) * (BAR_HEIGHT + GAP) + GAP;
    let mut svg = String::new();
    let title = result["label"][locale].as_str().unwrap_or_default();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet"><title>{}</title>"#,
        escape(title)
    );
    if data.is_empty() {
        let empty = if locale == "zh-CN" { "没有数据" } else { "No data" };
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="middle" fill="currentColor">{empty}</text>"#,
            WIDTH / 2.0,
            height / 2.0 + 4.0
        );
        svg.push_str("</svg>");
        return svg;
    }
    let largest = data.iter().map(|(_, v)| v.abs()).fold(0.0_f64, f64::max).max(f64::MIN_POSITIVE);
    let room = WIDTH - LABEL_WIDTH - VALUE_WIDTH;
    for (i, (label, value)) in data.iter().enumerate() {
        let y = GAP + i as f64 * (BAR_HEIGHT + GAP);
        let width = (value.abs() / largest * room).max(1.0);
        let x = if funnel { LABEL_WIDTH + (room - width) / 2.0 } else { LABEL_WIDTH };
        let shown = compact(*value, locale);
        let _ = write!(
            svg,
            r#"<g class="chart-bar"><title>{label}: {value}</title><text x="{lx}" y="{ty}" text-anchor="end" fill="currentColor" font-size="13">{label}</text><rect x="{x:.1}" y="{y:.1}" width="{width:.1}" height="{BAR_HEIGHT}" rx="3" style="fill: var(--chart-1, #2f6fdf)"/><text x="{vx:.1}" y="{ty}" fill="currentColor" font-size="13">{shown}</text></g>"#,
            label = escape(label),
            value = plain(*value),
            lx = LABEL_WIDTH - 8.0,
            ty = y + BAR_HEIGHT / 2.0 + 4.5,
            vx = WIDTH - VALUE_WIDTH + 6.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_read_in_wan_and_yi() {
        assert_eq!(compact(9999.0, "zh-CN"), "9999");
        assert_eq!(compact(12_345.0, "zh-CN"), "1.2万");
        assert_eq!(compact(1_500_000.0, "zh-CN"), "150万");
        assert_eq!(compact(320_000_000.0, "zh-CN"), "3.2亿");
        assert_eq!(compact(-20_000.0, "zh-CN"), "-2万");
        assert_eq!(compact(12_345.0, "en"), "12.3K");
        assert_eq!(compact(4_500_000.0, "en"), "4.5M");
        assert_eq!(compact(1234.5, "en"), "1234.5");
    }

    #[test]
    fn bars_are_as_long_as_their_values_and_escape_labels() {
        let result = json!({"label": {"zh-CN": "商机", "en": "Deals"}, "rows": [
            {"labels": [{"zh-CN": "<script>", "en": "x"}], "values": ["2000.00"]},
            {"labels": [{"zh-CN": "谈判", "en": "y"}], "values": ["1000.00"]},
        ]});
        let svg = bars(&result, "zh-CN", false);
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"), "{svg}");
        let widths: Vec<f64> = svg
            .match_indices("width=\"")
            .skip(1)
            .map(|(i, m)| svg[i + m.len()..].split('"').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(widths.len(), 2);
        assert!((widths[0] - 2.0 * widths[1]).abs() < 0.2, "{widths:?}");
        assert!(bars(&json!({"rows": []}), "zh-CN", true).contains("没有数据"));
    }
}
