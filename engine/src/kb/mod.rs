//! The knowledge base (知识库): the category tree with its article counts, the articles of a
//! category, and article search — ranked by the index (BM25 over jieba words) and then
//! narrowed by the list's own query, so a category or the published-only rule never shows an
//! article the caller's read scope keeps from them. Bulk import of files is in [`import`].

pub mod import;

use std::collections::{HashMap, HashSet};

use crm_model::Action;
use serde::Serialize;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::records::{self, ListParams};

pub const ARTICLE: &str = "knowledge_article";
pub const CATEGORY: &str = "kb_category";
/// The links of service requests to the articles used on them (SV-3).
pub const LINK: &str = "service_request_article";
pub const REQUEST: &str = "service_request";
/// The service request's panel of its articles, where the page offers to find and attach.
pub const REQUEST_PANEL: &str = "articles";

/// Most categories the tree shows; a knowledge base has tens of them.
const MAX_CATEGORIES: u32 = 500;

/// Most articles a category page lists.
const PAGE_ARTICLES: u32 = 50;

/// A category with its subcategories; `count` holds the articles of the whole subtree.
#[derive(Debug, Serialize)]
pub struct Category {
    pub id: Uuid,
    pub name: String,
    pub count: i64,
    pub children: Vec<Category>,
}

/// The categories the caller reads, as a tree, and the articles without a category.
#[derive(Debug, Serialize)]
pub struct Tree {
    pub roots: Vec<Category>,
    pub uncategorised: i64,
    pub total: i64,
}

impl Tree {
    /// A category and every category below it.
    pub fn subtree(&self, id: Uuid) -> Option<Vec<Uuid>> {
        fn find(nodes: &[Category], id: Uuid) -> Option<&Category> {
            nodes.iter().find_map(|n| if n.id == id { Some(n) } else { find(&n.children, id) })
        }
        fn collect(node: &Category, into: &mut Vec<Uuid>) {
            into.push(node.id);
            for child in &node.children {
                collect(child, into);
            }
        }
        let node = find(&self.roots, id)?;
        let mut ids = Vec::new();
        collect(node, &mut ids);
        Some(ids)
    }
}

/// An article as the knowledge base shows it; a search hit carries the field it matched in
/// and the fragment with the matched byte ranges.
#[derive(Debug, Serialize)]
pub struct Article {
    pub id: Uuid,
    pub title: String,
    pub matched: Option<Json>,
}

/// Whether the caller sees only published articles: those who may not edit articles read
/// what is finished, not drafts.
pub fn published_only(principal: &Principal) -> bool {
    !principal.access.allows(ARTICLE, Action::Edit)
}

/// The filter every article the caller is shown meets, beyond their read scope.
fn article_filter(principal: &Principal, categories: Option<&[Uuid]>, ids: Option<&[Uuid]>) -> Option<String> {
    let mut all = Vec::new();
    if published_only(principal) {
        all.push(json!({"field": "published", "op": "eq", "value": true}));
    }
    if let Some(categories) = categories {
        all.push(json!({"field": "category", "op": "in", "value": categories}));
    }
    if let Some(ids) = ids {
        all.push(json!({"field": "id", "op": "in", "value": ids}));
    }
    (!all.is_empty()).then(|| json!({"and": all}).to_string())
}

/// The rows of a list page as the API writes them.
fn rows(page: &records::ListPage) -> ApiResult<Vec<Json>> {
    let mut json = serde_json::to_value(page).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(match json.get_mut("data").map(Json::take) {
        Some(Json::Array(rows)) => rows,
        _ => Vec::new(),
    })
}

fn uuid_of(row: &Json, key: &str) -> Option<Uuid> {
    row.get(key)?.as_str()?.parse().ok()
}

/// The category tree the caller reads, with the articles they are shown counted per subtree.
pub async fn tree(app: &App, principal: &Principal) -> ApiResult<Tree> {
    let counts = if principal.sees(ARTICLE) {
        let filter = article_filter(principal, None, None);
        records::groups(app, principal, ARTICLE, "category", None, filter.as_deref()).await?
    } else {
        json!({"groups": []})
    };
    let mut own: HashMap<Option<Uuid>, i64> = HashMap::new();
    for group in counts["groups"].as_array().into_iter().flatten() {
        let id = group["value"].as_str().and_then(|v| v.parse().ok());
        *own.entry(id).or_default() += group["count"].as_i64().unwrap_or(0);
    }
    let total = own.values().sum();
    let categories = if principal.sees(CATEGORY) {
        let params = ListParams {
            fields: Some("name,parent".into()),
            sort: Some("sort_order,name".into()),
            limit: Some(MAX_CATEGORIES),
            ..ListParams::default()
        };
        rows(&records::list(app, principal, CATEGORY, &params).await?)?
    } else {
        Vec::new()
    };
    let known: HashSet<Uuid> = categories.iter().filter_map(|c| uuid_of(c, "id")).collect();
    let mut children: HashMap<Option<Uuid>, Vec<(Uuid, String)>> = HashMap::new();
    for category in &categories {
        let Some(id) = uuid_of(category, "id") else { continue };
        // A parent the caller cannot read (or a deleted one) leaves its children at the top.
        let parent = uuid_of(category, "parent").filter(|p| known.contains(p));
        let name = category["name"].as_str().unwrap_or_default().to_owned();
        children.entry(parent).or_default().push((id, name));
    }
    let mut placed = HashSet::new();
    let mut roots = build(None, &children, &own, &mut placed);
    // Categories in a loop of parents reach no root: shown at the top rather than lost.
    for (id, name) in children.values().flatten() {
        if !placed.contains(id) {
            let mut node = Category { id: *id, name: name.clone(), count: 0, children: Vec::new() };
            placed.insert(*id);
            node.children = build(Some(*id), &children, &own, &mut placed);
            node.count = own.get(&Some(*id)).copied().unwrap_or(0) + node.children.iter().map(|c| c.count).sum::<i64>();
            roots.push(node);
        }
    }
    let counted: i64 = known.iter().map(|id| own.get(&Some(*id)).copied().unwrap_or(0)).sum();
    Ok(Tree { roots, uncategorised: total - counted, total })
}

fn build(
    parent: Option<Uuid>,
    children: &HashMap<Option<Uuid>, Vec<(Uuid, String)>>,
    own: &HashMap<Option<Uuid>, i64>,
    placed: &mut HashSet<Uuid>,
) -> Vec<Category> {
    let mut nodes = Vec::new();
    for (id, name) in children.get(&parent).into_iter().flatten() {
        if !placed.insert(*id) {
            continue;
        }
        let below = build(Some(*id), children, own, placed);
        let count = own.get(&Some(*id)).copied().unwrap_or(0) + below.iter().map(|c| c.count).sum::<i64>();
        nodes.push(Category { id: *id, name: name.clone(), count, children: below });
    }
    nodes
}

/// The articles of a category (and its subcategories), or of all categories, newest first;
/// with a text, those the search finds, best first, each with its marked fragment.
pub async fn articles(
    app: &App,
    principal: &Principal,
    tree: &Tree,
    category: Option<Uuid>,
    text: &str,
) -> ApiResult<Vec<Article>> {
    let categories = match category {
        Some(id) => Some(tree.subtree(id).ok_or_else(|| ApiError::not_found(format!("no category `{id}`")))?),
        None => None,
    };
    let text = text.trim();
    if text.is_empty() {
        let params = ListParams {
            filter: article_filter(principal, categories.as_deref(), None),
            fields: Some("name".into()),
            limit: Some(PAGE_ARTICLES),
            ..ListParams::default()
        };
        let page = records::list(app, principal, ARTICLE, &params).await?;
        return Ok(rows(&page)?
            .iter()
            .filter_map(|row| {
                let title = row["name"].as_str().unwrap_or_default().to_owned();
                Some(Article { id: uuid_of(row, "id")?, title, matched: None })
            })
            .collect());
    }
    let found =
        crate::search::search(app, principal, text, Some(&[ARTICLE.to_owned()]), crate::search::MAX_RESULTS).await?;
    let hits: Vec<Json> = found["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["hits"].as_array().cloned().unwrap_or_default())
        .collect();
    let ids: Vec<Uuid> = hits.iter().filter_map(|h| uuid_of(h, "id")).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    // The list's own query keeps the hits of the category, published if need be, in scope.
    let params = ListParams {
        filter: article_filter(principal, categories.as_deref(), Some(&ids)),
        fields: Some("name".into()),
        limit: Some(crate::search::MAX_RESULTS as u32),
        ..ListParams::default()
    };
    let kept: HashSet<Uuid> = rows(&records::list(app, principal, ARTICLE, &params).await?)?
        .iter()
        .filter_map(|r| uuid_of(r, "id"))
        .collect();
    Ok(hits
        .into_iter()
        .filter_map(|hit| {
            let id = uuid_of(&hit, "id").filter(|id| kept.contains(id))?;
            let title = hit["title"].as_str().unwrap_or_default().to_owned();
            let matched = json!({
                "field_label": hit["field_label"],
                "fragment": hit["fragment"],
                "highlights": hit["highlights"],
            });
            Some(Article { id, title, matched: Some(matched) })
        })
        .collect())
}

/// The articles already attached to a service request, as the caller reads its links: the
/// page does not offer them again (the pipeline's rule refuses a second link anyway).
pub async fn attached(app: &App, principal: &Principal, request: &str) -> ApiResult<Vec<Uuid>> {
    let params =
        ListParams { fields: Some("article".into()), limit: Some(records::MAX_LIMIT), ..ListParams::default() };
    let page = records::related(app, principal, REQUEST, request, REQUEST_PANEL, &params).await?;
    Ok(rows(&page)?.iter().filter_map(|row| uuid_of(row, "article")).collect())
}
