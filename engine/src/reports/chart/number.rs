//! One big number: the report's total, the period it covers (本月 / This month) and, when the
//! report knows the period before, how much it rose or fell against it.

use std::fmt::Write;

use chrono::{Days, NaiveDate};
use serde_json::Value as Json;

use super::{Drawing, Figure, Figures, WIDTH, compact, escape, no_data, percent};

pub(super) fn draw(result: &Json, figures: &Figures, locale: &str) -> Drawing {
    // A result without a `total` (one from before the total was reported) is summed here.
    let total = Figure::read(&result["total"]).or_else(|| Figure::sum(figures.cells.iter().flatten().flatten()));
    let Some(total) = total else { return no_data(locale) };
    let mut y = 84.0;
    let mut body = format!(
        r#"<text class="chart-number" x="{x}" y="{y}" text-anchor="middle" font-size="56" font-weight="600" fill="currentColor"><title>{exact}</title>{shown}</text>"#,
        x = WIDTH / 2.0,
        exact = escape(&total.exact),
        shown = escape(&compact(total.value, locale)),
    );
    let line = |y: f64, content: &str| {
        format!(
            r#"<text x="{x}" y="{y}" text-anchor="middle" font-size="16" fill="currentColor">{content}</text>"#,
            x = WIDTH / 2.0
        )
    };
    if let Some(period) = period_name(&result["period"], locale) {
        y += 36.0;
        body += &line(y, &format!(r#"<tspan fill-opacity="0.7">{}</tspan>"#, escape(&period)));
    }
    if let Some(previous) = result.get("previous") {
        y += 30.0;
        body += &line(y, &change(total.value, Figure::read(previous), locale));
    }
    Drawing { height: y + 24.0, body }
}

/// `较上期 ▲12.5%` / `vs previous ▼3%` in the theme's colours for good and bad, `—` when the
/// period before had nothing to compare with.
fn change(total: f64, previous: Option<Figure>, locale: &str) -> String {
    let lead = if locale == "zh-CN" { "较上期" } else { "vs previous" };
    // A no-break space: an ordinary one at the end of a tspan is collapsed by some renderers.
    let mut text = format!("<tspan fill-opacity=\"0.7\">{lead}\u{a0}</tspan>");
    match previous {
        Some(previous) if previous.value != 0.0 => {
            let ratio = (total - previous.value) / previous.value.abs();
            let (arrow, fill) = match ratio {
                r if r > 0.0 => ("▲", " style=\"fill: var(--ok, #2e7d32)\""),
                r if r < 0.0 => ("▼", " style=\"fill: var(--danger, #c62828)\""),
                _ => ("", ""),
            };
            let _ = write!(
                text,
                r#"<tspan class="chart-change"{fill}><title>{exact}</title>{arrow}{percent}</tspan>"#,
                exact = escape(&previous.exact),
                percent = percent(ratio.abs()),
            );
        }
        _ => text.push('—'),
    }
    text
}

/// What the report's period is called: a named range (本月 / This month), or its first and
/// last day.
fn period_name(period: &Json, locale: &str) -> Option<String> {
    let names = match period["range"].as_str()? {
        "today" => ("今天", "Today"),
        "yesterday" => ("昨天", "Yesterday"),
        "this_week" => ("本周", "This week"),
        "last_week" => ("上周", "Last week"),
        "this_month" => ("本月", "This month"),
        "last_month" => ("上月", "Last month"),
        "next_month" => ("下月", "Next month"),
        "this_quarter" => ("本季度", "This quarter"),
        "last_quarter" => ("上季度", "Last quarter"),
        "next_quarter" => ("下季度", "Next quarter"),
        "this_year" => ("今年", "This year"),
        "last_year" => ("去年", "Last year"),
        _ => {
            let from = period["from"].as_str()?;
            // `until` is the first day after the period.
            let until: NaiveDate = period["until"].as_str()?.parse().ok()?;
            return Some(format!("{from} – {}", until.checked_sub_days(Days::new(1))?));
        }
    };
    Some(if locale == "zh-CN" { names.0 } else { names.1 }.to_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::draw;
    use super::super::tests::report;

    fn number(total: serde_json::Value, previous: Option<serde_json::Value>, locale: &str) -> String {
        let mut result = report("number", "本月成交", &[("—", None, total.clone())]);
        result["total"] = total;
        result["period"] = json!({"range": "this_month", "from": "2026-12-01", "until": "2027-01-01"});
        if let Some(previous) = previous {
            result["previous"] = previous;
        }
        draw(&result, locale)
    }

    #[test]
    fn the_total_is_one_big_number_with_its_period() {
        let svg = number(json!("1234567.80"), None, "zh-CN");
        assert!(svg.contains("<title>1234567.80</title>123万</text>"), "{svg}");
        assert!(svg.contains(">本月</tspan>"), "{svg}");
        assert!(!svg.contains("较上期") && !svg.contains("chart-change"), "no previous, no change: {svg}");
        assert!(number(json!(12), None, "en").contains(">This month</tspan>"));
    }

    #[test]
    fn the_change_against_the_previous_period_goes_up_or_down() {
        let up = number(json!("120.00"), Some(json!("100.00")), "zh-CN");
        assert!(up.contains(">较上期\u{a0}</tspan>"), "{up}");
        assert!(up.contains("var(--ok, #2e7d32)\"><title>100.00</title>▲20%</tspan>"), "{up}");
        let down = number(json!(80), Some(json!(100)), "en");
        assert!(down.contains(">vs previous\u{a0}</tspan>"), "{down}");
        assert!(down.contains("var(--danger, #c62828)\"><title>100</title>▼20%</tspan>"), "{down}");
        let eighth = number(json!("112.50"), Some(json!("100")), "en");
        assert!(eighth.contains("▲12.5%"), "{eighth}");
        for nothing in [json!(0), json!(null)] {
            let svg = number(json!("120.00"), Some(nothing), "zh-CN");
            assert!(svg.contains(">较上期\u{a0}</tspan>—</text>") && !svg.contains('▲'), "{svg}");
        }
    }

    #[test]
    fn a_period_without_a_name_shows_its_days() {
        let mut result = report("number", "t", &[("—", None, json!(3))]);
        result["period"] = json!({"range": "custom", "from": "2026-12-01", "until": "2027-01-01"});
        let svg = draw(&result, "en");
        assert!(svg.contains(">2026-12-01 – 2026-12-31</tspan>"), "{svg}");
        assert!(svg.contains("<title>3</title>3</text>"), "summed from the rows without a total: {svg}");
    }
}
