//! A survey's statistics per question: how many answered each choice and what share of the
//! responses that is, drawn as bars; a rating's average; the latest free-text answers. The
//! counts are reports over the answers, so a reader counts only the responses their role
//! lets them read, and a bar opens the answers behind it.

use std::collections::HashMap;

use serde_json::{Value as Json, json};

use super::{ANSWER, Kind, RESPONSE, Survey};
use crate::access::Principal;
use crate::app::App;
use crate::error::ApiResult;
use crate::records::{self, ListParams};
use crate::reports::{self, chart};

/// Free-text answers shown per question.
const TEXTS_SHOWN: u32 = 20;

/// The statistics of `survey` as `principal` may count them: `responses`, and per question
/// its `rows` (option, count, percent of the responses, the answers' list), a bar chart of
/// a choice or rating, a rating's `average` and the latest `texts`.
pub async fn statistics(
    app: &App,
    principal: &Principal,
    survey: &Survey,
    offset_minutes: i32,
    locale: &str,
) -> ApiResult<Json> {
    let of_survey = json!({"field": "survey", "op": "eq", "value": survey.id});
    let counted = reports::ad_hoc(&json!({
        "entity": RESPONSE, "filter": of_survey, "measures": [{"agg": "count"}], "chart": "number",
    }))?;
    let responses = reports::run(app, principal, &counted, offset_minutes).await?["total"].as_i64().unwrap_or(0);
    let grouped = reports::ad_hoc(&json!({
        "entity": ANSWER,
        "filter": of_survey,
        "group_by": [{"field": "question"}, {"field": "answer"}],
        "measures": [{"agg": "count"}],
        "chart": "bar",
    }))?;
    let result = reports::run(app, principal, &grouped, offset_minutes).await?;
    // Per question, per answer: the count and the list of those answers.
    let mut counts: HashMap<(String, String), (i64, Option<String>)> = HashMap::new();
    for row in result["rows"].as_array().into_iter().flatten() {
        let key = |i: usize| row["keys"][i].as_str().unwrap_or_default().to_owned();
        let href = reports::drill_href(&result, row);
        counts.insert((key(0), key(1)), (row["values"][0].as_i64().unwrap_or(0), href));
    }
    let mut questions = Vec::new();
    for question in &survey.questions {
        let id = question.id.to_string();
        let rows: Vec<Json> = question
            .options
            .iter()
            .map(|option| {
                let (count, href) = counts.get(&(id.clone(), option.clone())).cloned().unwrap_or((0, None));
                json!({"option": option, "count": count, "percent": percent(count, responses), "href": href})
            })
            .collect();
        let answered: i64 = rows.iter().filter_map(|r| r["count"].as_i64()).sum();
        let average = (question.kind == Kind::Rating && answered > 0).then(|| {
            let total: i64 = rows
                .iter()
                .filter_map(|r| Some(r["option"].as_str()?.parse::<i64>().ok()? * r["count"].as_i64()?))
                .sum();
            format!("{:.1}", total as f64 / answered as f64)
        });
        let chart = (question.kind != Kind::Text).then(|| chart::draw(&drawn(&question.text, &rows), locale));
        let texts = match question.kind {
            Kind::Text => latest_texts(app, principal, question.id).await?,
            _ => Vec::new(),
        };
        questions.push(json!({
            "id": question.id,
            "text": question.text,
            "kind": question.kind.as_str(),
            "rows": rows,
            "average": average,
            "chart": chart,
            "texts": texts,
        }));
    }
    Ok(json!({"responses": responses, "questions": questions}))
}

/// A count as a share of the responses, one decimal.
fn percent(count: i64, responses: i64) -> String {
    if responses == 0 { "0.0".to_owned() } else { format!("{:.1}", count as f64 * 100.0 / responses as f64) }
}

/// A question's counts in the shape a report's result has, for its chart: every option in
/// the survey's order, those nobody chose too.
fn drawn(title: &str, rows: &[Json]) -> Json {
    let rows: Vec<Json> = rows
        .iter()
        .map(|r| {
            let option = &r["option"];
            json!({"keys": [option], "labels": [{"zh-CN": option, "en": option}], "values": [r["count"]]})
        })
        .collect();
    json!({"label": {"zh-CN": title, "en": title}, "chart": "bar", "rows": rows})
}

/// The latest free-text answers to a question the reader may read.
async fn latest_texts(app: &App, principal: &Principal, question: uuid::Uuid) -> ApiResult<Vec<String>> {
    let params = ListParams {
        filter: Some(json!({"field": "question", "op": "eq", "value": question}).to_string()),
        sort: Some("-created_at".into()),
        limit: Some(TEXTS_SHOWN),
        fields: Some("answer".into()),
        ..ListParams::default()
    };
    let page = serde_json::to_value(records::list(app, principal, ANSWER, &params).await?)
        .map_err(|e| crate::error::ApiError::Internal(e.into()))?;
    Ok(page["data"].as_array().into_iter().flatten().filter_map(|r| r["answer"].as_str().map(str::to_owned)).collect())
}
