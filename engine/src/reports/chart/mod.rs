//! Charts drawn on the server as SVG from a report's result: readable without JavaScript,
//! printable, and in the page's colours (the marks use `currentColor` and the theme's
//! `--chart-1` … `--chart-6`, with fallbacks for a file opened on its own). Every mark carries
//! its label and exact value in a `<title>`, so hovering shows the details. Numbers read the
//! Chinese way on a Chinese screen: 1.2万, 3.4亿.
//!
//! [`draw`] picks the drawing by the report's `chart`: bars (also for tables), stacked bars,
//! a funnel, lines, a pie or a donut, or one big number. This module holds what they share:
//! reading the result into [`Figures`], the frame, text that fits, colours and the legend.

mod bars;
mod line;
mod number;
mod pie;

use std::fmt::Write;

use serde_json::Value as Json;

/// The width the drawing is laid out in; the SVG scales to its container, so on a phone a
/// unit is about half a pixel and no text is smaller than [`SMALL`].
const WIDTH: f64 = 640.0;
const FONT: f64 = 13.0;
const SMALL: f64 = 12.0;

/// The marks' colours by position, as the theme sets them; the fallbacks are the light blue
/// theme's, for the SVG served on its own.
const PALETTE: [&str; 6] = ["#1f6feb", "#d35f00", "#1a8a5f", "#d1436d", "#7c4dcc", "#0b8197"];

/// A report's result drawn as its `chart` says, in the words and numbers of `locale`.
pub fn draw(result: &Json, locale: &str) -> String {
    let figures = Figures::read(result, locale);
    let drawing = if figures.categories.is_empty() {
        no_data(locale)
    } else {
        match result["chart"].as_str().unwrap_or_default() {
            "line" => line::draw(&figures, locale),
            "pie" => pie::draw(&figures, locale, false),
            "donut" => pie::draw(&figures, locale, true),
            "funnel" => bars::funnel(&figures, locale),
            "number" => number::draw(result, &figures, locale),
            // Bars, stacked by the second group when there is one; a table's image too.
            _ => bars::stacked(&figures, locale),
        }
    };
    let title = result["label"][locale].as_str().or_else(|| result["label"]["en"].as_str()).unwrap_or_default();
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMinYMin meet" font-family="system-ui, sans-serif"><title>{title}</title>{body}</svg>"#,
        height = drawing.height,
        title = escape(title),
        body = drawing.body,
    )
}

/// The marks of a chart and the height they take in the frame.
struct Drawing {
    height: f64,
    body: String,
}

/// "没有数据" / "No data", for a report without rows (or a pie without a positive slice).
fn no_data(locale: &str) -> Drawing {
    let text = if locale == "zh-CN" { "没有数据" } else { "No data" };
    let height = 60.0;
    let body = format!(
        r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="{FONT}" fill="currentColor">{text}</text>"#,
        x = WIDTH / 2.0,
        y = height / 2.0 + 4.0,
    );
    Drawing { height, body }
}

/// One measured value: as a number to draw and as the report gave it, exact, to show.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    value: f64,
    exact: String,
}

impl Figure {
    /// A count (a JSON number) or an amount (an exact decimal string); none for null.
    fn read(json: &Json) -> Option<Figure> {
        match json {
            Json::Number(n) => Some(Figure { value: n.as_f64()?, exact: n.to_string() }),
            Json::String(s) => Some(Figure { value: s.parse().ok()?, exact: s.clone() }),
            _ => None,
        }
    }

    /// The sum of several figures; one figure stays as exact as it was.
    fn sum<'a>(figures: impl IntoIterator<Item = &'a Figure>) -> Option<Figure> {
        let figures: Vec<&Figure> = figures.into_iter().collect();
        match figures.as_slice() {
            [] => None,
            [one] => Some((*one).clone()),
            many => {
                let value = many.iter().map(|f| f.value).sum();
                Some(Figure { value, exact: plain(value) })
            }
        }
    }
}

/// A report's result as the charts read it: the first measure by the values of the first
/// group (the categories, in the order of the rows) and of the second (the series; a single
/// unnamed one when the report has one group).
struct Figures {
    categories: Vec<String>,
    series: Vec<String>,
    /// `cells[category][series]`; none where no row has that pair or its value is null.
    cells: Vec<Vec<Option<Figure>>>,
    /// `links[category][series]`: the list of the records behind a cell, where it has one.
    links: Vec<Vec<Option<String>>>,
    /// Per category, the average days its records stayed in it, when the first group is a
    /// stage (`days_in_stage`, a decimal in days).
    days: Vec<Option<String>>,
}

impl Figures {
    fn read(result: &Json, locale: &str) -> Figures {
        // A group value is told apart by its key and its label: two records may share a title
        // ("(not visible)"), and a result written by hand may carry labels only.
        type Seen = Vec<(String, String)>;
        fn position(seen: &mut Seen, key: &Json, label: String) -> usize {
            let identity = (key.to_string(), label);
            seen.iter().position(|s| *s == identity).unwrap_or_else(|| {
                seen.push(identity);
                seen.len() - 1
            })
        }
        let label = |row: &Json, group: usize| -> String {
            let labels = &row["labels"][group];
            labels[locale].as_str().or_else(|| labels["en"].as_str()).unwrap_or("—").to_owned()
        };
        let (mut categories, mut series): (Seen, Seen) = (Vec::new(), Vec::new());
        let mut cells: Vec<(usize, usize, Figure)> = Vec::new();
        let mut links: Vec<(usize, usize, String)> = Vec::new();
        let mut days: Vec<Option<String>> = Vec::new();
        for row in result["rows"].as_array().into_iter().flatten() {
            let c = position(&mut categories, &row["keys"][0], label(row, 0));
            days.resize(categories.len(), None);
            if let Some(stay) = row["days_in_stage"].as_str() {
                days[c] = Some(stay.to_owned());
            }
            let s = match row["labels"].as_array().map_or(0, Vec::len) {
                0 | 1 => position(&mut series, &Json::Null, String::new()),
                _ => position(&mut series, &row["keys"][1], label(row, 1)),
            };
            if let Some(figure) = Figure::read(&row["values"][0]) {
                cells.push((c, s, figure));
            }
            links.extend(super::drill_href(result, row).map(|href| (c, s, href)));
        }
        let mut grid = vec![vec![None; series.len()]; categories.len()];
        for (c, s, figure) in cells {
            grid[c][s] = Some(figure);
        }
        let mut hrefs = vec![vec![None; series.len()]; categories.len()];
        for (c, s, href) in links {
            hrefs[c][s] = Some(href);
        }
        Figures {
            categories: categories.into_iter().map(|(_, label)| label).collect(),
            series: series.into_iter().map(|(_, label)| label).collect(),
            cells: grid,
            links: hrefs,
            days,
        }
    }

    /// The mark of a cell as a link to the records behind it, where it has them.
    fn linked(&self, category: usize, series: usize, mark: String) -> String {
        match &self.links[category][series] {
            Some(href) => format!(r#"<a href="{}">{mark}</a>"#, escape(href)),
            None => mark,
        }
    }

    /// The mark of a whole category as a link: a category is one cell when there is one
    /// series; a category of several series has no single list behind it.
    fn linked_category(&self, category: usize, mark: String) -> String {
        match self.series.len() {
            1 => self.linked(category, 0, mark),
            _ => mark,
        }
    }

    /// A category's value summed over the series.
    fn total(&self, category: usize) -> Option<Figure> {
        Figure::sum(self.cells[category].iter().flatten())
    }

    /// What a mark of a category and series is called in its `<title>`.
    fn name(&self, category: usize, series: usize) -> String {
        match self.series.len() {
            1 => self.categories[category].clone(),
            _ => format!("{} · {}", self.categories[category], self.series[series]),
        }
    }
}

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

/// A ratio as a percentage with at most one decimal: `0.5` is `50%`, `0.125` is `12.5%`.
fn percent(ratio: f64) -> String {
    let text = format!("{:.1}", ratio * 100.0);
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// Text escaped for SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The fill or stroke of the `index`th series or slice.
fn colour(index: usize) -> String {
    format!("var(--chart-{}, {})", index % PALETTE.len() + 1, PALETTE[index % PALETTE.len()])
}

/// About how wide a text is at a font size: a Chinese character takes the whole em, a Latin
/// letter or digit a little over half, and `…` the whole em as Chinese fonts draw it.
fn text_width(text: &str, size: f64) -> f64 {
    text.chars().map(|c| if c == '…' || u32::from(c) >= 0x2E80 { 1.0 } else { 0.6 }).sum::<f64>() * size
}

/// The text, cut short with `…` if it would be wider than `room`.
fn fit(text: &str, room: f64, size: f64) -> String {
    if text_width(text, size) <= room {
        return text.to_owned();
    }
    let mut shown = String::new();
    for c in text.chars() {
        if text_width(&shown, size) + text_width(&format!("{c}…"), size) > room {
            break;
        }
        shown.push(c);
    }
    shown.push('…');
    shown
}

/// A line of text in the page's colour, cut to `room` with the whole of it in a `<title>`.
fn label(x: f64, y: f64, anchor: &str, size: f64, text: &str, room: f64) -> String {
    let shown = fit(text, room, size);
    let whole = if shown == text { String::new() } else { format!("<title>{}</title>", escape(text)) };
    format!(
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-size="{size}" fill="currentColor">{whole}{}</text>"#,
        escape(&shown)
    )
}

/// The names of the series with their colours, in rows from left to right starting at `top`;
/// returns the marks and the height they take.
fn legend(names: &[String], top: f64) -> (String, f64) {
    const ROW: f64 = 20.0;
    const SWATCH: f64 = 12.0;
    const LEFT: f64 = 8.0;
    let mut body = String::new();
    let (mut x, mut y) = (LEFT, top);
    for (i, name) in names.iter().enumerate() {
        let shown = fit(name, 160.0, SMALL);
        let width = SWATCH + 6.0 + text_width(&shown, SMALL) + 16.0;
        if x > LEFT && x + width > WIDTH {
            (x, y) = (LEFT, y + ROW);
        }
        let _ = write!(
            body,
            r#"<rect x="{x:.1}" y="{sy:.1}" width="{SWATCH}" height="{SWATCH}" rx="2" style="fill: {fill}"/>{text}"#,
            sy = y + (ROW - SWATCH) / 2.0,
            fill = colour(i),
            text = label(x + SWATCH + 6.0, y + ROW / 2.0 + 4.0, "start", SMALL, name, 160.0),
        );
        x += width;
    }
    (body, y + ROW - top)
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::{Value as Json, json};

    use super::*;

    /// A result of a `chart` with rows of (first group's label, second group's label if any,
    /// value), titled `title`.
    pub fn report(chart: &str, title: &str, rows: &[(&str, Option<&str>, Json)]) -> Json {
        let rows: Vec<Json> = rows
            .iter()
            .map(|(first, second, value)| {
                let labels: Vec<Json> =
                    [Some(*first), *second].into_iter().flatten().map(|l| json!({"zh-CN": l, "en": l})).collect();
                let keys: Vec<&str> = [Some(*first), *second].into_iter().flatten().collect();
                json!({"keys": keys, "labels": labels, "values": [value]})
            })
            .collect();
        json!({"label": {"zh-CN": title, "en": title}, "chart": chart, "rows": rows})
    }

    /// The numbers in the attribute `name` of every element of `class` in the order drawn.
    pub fn attributes(svg: &str, class: &str, name: &str) -> Vec<f64> {
        svg.split(&format!("class=\"{class}\""))
            .skip(1)
            .map(|element| {
                let element = element.split('>').next().unwrap();
                let start = element.find(&format!(" {name}=\"")).unwrap_or_else(|| panic!("{name} in {element}"));
                element[start + name.len() + 3..].split('"').next().unwrap().parse().unwrap()
            })
            .collect()
    }

    const EVERY_CHART: [&str; 8] = ["table", "bar", "stacked_bar", "line", "pie", "donut", "funnel", "number"];

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
        assert_eq!(percent(0.5), "50%");
        assert_eq!(percent(0.125), "12.5%");
    }

    #[test]
    fn every_chart_escapes_its_labels_and_title() {
        let rows = [
            ("<script>alert(1)</script>", Some("<b>&\"east\""), json!("2000.00")),
            ("谈判", Some("<b>&\"east\""), json!("1000.00")),
        ];
        for chart in EVERY_CHART {
            for locale in ["zh-CN", "en"] {
                let svg = draw(&report(chart, "<script>title</script>", &rows), locale);
                assert!(!svg.contains("<script") && !svg.contains("<b>"), "{chart}: {svg}");
                assert!(svg.contains("<title>&lt;script&gt;title&lt;/script&gt;</title>"), "{chart}: {svg}");
                if chart != "number" {
                    assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{chart}: {svg}");
                }
            }
        }
    }

    #[test]
    fn every_chart_without_rows_says_so() {
        for chart in EVERY_CHART {
            let svg = draw(&report(chart, "空", &[]), "zh-CN");
            assert!(svg.starts_with("<svg") && svg.contains(">没有数据</text>"), "{chart}: {svg}");
            assert!(draw(&report(chart, "Empty", &[]), "en").contains(">No data</text>"), "{chart}");
        }
    }

    #[test]
    fn long_labels_are_cut_and_kept_whole_in_a_title() {
        let long = "华东区域重点客户战略合作项目第二期";
        let svg = draw(&report("bar", "t", &[(long, None, json!(3))]), "zh-CN");
        assert!(svg.contains(&format!("<title>{long}</title>")), "{svg}");
        let shown = fit(long, 138.0, FONT);
        assert!(shown.ends_with('…') && text_width(&shown, FONT) <= 138.0, "{shown}");
        assert!(svg.contains(&format!("{shown}</text>")), "{svg}");
        assert_eq!(fit("Won", 138.0, FONT), "Won");
    }

    #[test]
    fn groups_with_the_same_label_and_different_keys_stay_apart() {
        let mut result = report("bar", "t", &[("a", None, json!(1)), ("b", None, json!(2))]);
        for row in result["rows"].as_array_mut().unwrap() {
            row["labels"] = json!([{"zh-CN": "（无权查看）", "en": "(not visible)"}]);
        }
        let figures = Figures::read(&result, "en");
        assert_eq!(figures.categories, ["(not visible)", "(not visible)"]);
        assert_eq!(figures.series.len(), 1);
    }
}
