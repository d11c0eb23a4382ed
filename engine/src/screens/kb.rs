//! The knowledge base page (`/kb`, 知识库): the category tree with article counts, a search
//! over the articles with the matched words marked, the articles of the chosen category, and
//! for those who may import articles, a form that turns Markdown, HTML and text files into
//! articles. The services in `crate::kb` decide what the viewer is shown.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use crm_model::Action;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::search::pieces;
use super::{Viewer, html, redirect_with};
use crate::app::{App, AppState};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::http::ApiQuery;
use crate::http::kb::ImportForm;
use crate::kb::{self, ARTICLE, CATEGORY, Category, Tree, import};

#[derive(Deserialize)]
pub struct KbQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    category: String,
}

/// `GET /kb?q=&category=`
pub async fn page(
    State(app): State<AppState>,
    viewer: Viewer,
    ApiQuery(query): ApiQuery<KbQuery>,
) -> ApiResult<Response> {
    let category = match query.category.trim() {
        "" => None,
        id => Some(id.parse::<Uuid>().map_err(|_| ApiError::not_found(format!("no category `{id}`")))?),
    };
    render(&app, &viewer, &query.q, category, Vec::new()).await
}

/// `POST /kb/import`: the files of the form become articles, then back to the page; a bad
/// file shows the page again with what is wrong with each, and nothing written.
pub async fn import_files(State(app): State<AppState>, viewer: Viewer, form: ImportForm) -> ApiResult<Response> {
    super::check_csrf(form.csrf.as_deref(), &viewer.csrf)?;
    let category = form.category.as_deref().map(str::trim).filter(|c| !c.is_empty());
    match import::import(&app, &viewer.principal, category, &form.files).await {
        Ok(ids) => {
            let back = category.map_or_else(|| "/kb".to_owned(), |c| format!("/kb?category={}", super::encode(c)));
            let message = super::shell::text(viewer.locale, "kb.imported", &[("count", ids.len().to_string())]);
            Ok(redirect_with(&back, Some(&message)))
        }
        Err(ApiError::Invalid(errors)) => {
            let messages = errors.iter().map(|e| error_text(&viewer, e, &form.files)).collect();
            let mut response = render(&app, &viewer, "", category.and_then(|c| c.parse().ok()), messages).await?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(e) => Err(e),
    }
}

/// A file's error in the viewer's language, naming the file (the English message does).
fn error_text(viewer: &Viewer, error: &FieldError, files: &[import::Upload]) -> String {
    let n = error.field.strip_prefix("files/").and_then(|rest| rest.split('/').next()?.parse::<usize>().ok());
    match n.and_then(|n| files.get(n)) {
        Some(file) if viewer.locale != "en" => {
            format!("{}：{}", import::base_name(&file.name), viewer.error_text(error))
        }
        _ => viewer.error_text(error),
    }
}

/// The tree as the template walks it, with the chosen category marked.
fn nodes(categories: &[Category], chosen: Option<Uuid>) -> Vec<Json> {
    categories
        .iter()
        .map(|c| {
            json!({
                "id": c.id,
                "name": c.name,
                "count": c.count,
                "chosen": chosen == Some(c.id),
                "children": nodes(&c.children, chosen),
            })
        })
        .collect()
}

/// Every category with its depth, for the import form's choice.
fn flat(categories: &[Category], depth: usize, into: &mut Vec<Json>) {
    for c in categories {
        into.push(json!({"id": c.id, "name": format!("{}{}", "　".repeat(depth), c.name)}));
        flat(&c.children, depth + 1, into);
    }
}

fn chosen_name(categories: &[Category], id: Uuid) -> Option<&str> {
    categories.iter().find_map(|c| if c.id == id { Some(c.name.as_str()) } else { chosen_name(&c.children, id) })
}

async fn render(
    app: &App,
    viewer: &Viewer,
    q: &str,
    category: Option<Uuid>,
    errors: Vec<String>,
) -> ApiResult<Response> {
    let principal = &viewer.principal;
    principal.entity(&app.catalog(), ARTICLE, Action::Read)?;
    let tree: Tree = kb::tree(app, principal).await?;
    let found = kb::articles(app, principal, &tree, category, q).await?;
    let articles: Vec<Json> = found
        .iter()
        .map(|a| {
            let matched = a.matched.as_ref().map(|m| {
                let highlights = m["highlights"].as_array().cloned().unwrap_or_default();
                json!({
                    "field": m["field_label"][viewer.locale],
                    "pieces": pieces(m["fragment"].as_str().unwrap_or_default(), &highlights),
                })
            });
            json!({"id": a.id, "href": format!("/e/{ARTICLE}/{}", a.id), "title": a.title, "matched": matched})
        })
        .collect();
    let mut choices = Vec::new();
    flat(&tree.roots, 0, &mut choices);
    let may = |entity, action| principal.access.allows(entity, action);
    let values = json!({
        "q": q.trim(),
        "category": category,
        "category_name": category.and_then(|c| chosen_name(&tree.roots, c)),
        "tree": nodes(&tree.roots, category),
        "total": tree.total,
        "uncategorised": tree.uncategorised,
        "articles": articles,
        "choices": choices,
        "published_only": kb::published_only(principal),
        "can_import": may(ARTICLE, Action::Import),
        "can_create": may(ARTICLE, Action::Create),
        "can_create_category": may(CATEGORY, Action::Create),
        "errors": errors,
    });
    let title = viewer.text("kb.title");
    html("kb.html", viewer.page(&app.catalog(), Some("kb"), &title, values))
}
