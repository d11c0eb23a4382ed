//! The duplicate scan: every live record of an entity compared under each of its rules, as a
//! background task with progress, giving clusters of likely duplicates for review. Records
//! are compared only with those that share a key or enough character pairs with them (see
//! [`Blocks`]), so 100k records take seconds, not the hours every pair would.

use std::collections::{HashMap, HashSet};

use crm_model::Entity;
use crm_search::matching::Blocks;
use crm_store::records as store;
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::{forms, rule_of, stored_text};
use crate::access::Principal;
use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::tasks::{self, Progress};

/// Records read at a time.
const PAGE: u32 = 5000;
/// Records compared between two looks at whether other work waits.
const STRIDE: usize = 2000;
/// Most clusters a scan keeps for review.
pub const MAX_CLUSTERS: usize = 5000;

/// Starts a scan of an entity's records; an administrator's work.
pub async fn start(app: &App, principal: &Principal, entity_name: &str) -> ApiResult<Uuid> {
    principal.require_admin()?;
    let catalog = app.catalog();
    let entity =
        catalog.entity(entity_name).ok_or_else(|| ApiError::not_found(format!("no entity `{entity_name}`")))?;
    if entity.def.duplicates.is_empty() {
        return Err(ApiError::bad_request(
            "no_rules",
            format!("`{entity_name}` has no duplicate rules; add one in the studio first"),
        ));
    }
    let name = entity.name().to_string();
    tasks::start(app, principal, "duplicates", Some(entity_name), move |app, progress| async move {
        let catalog = app.catalog();
        let entity = catalog.entity(&name).ok_or_else(|| ApiError::not_found(format!("no entity `{name}`")))?;
        run(&app, entity, &progress).await
    })
    .await
}

/// Finds the clusters: records joined by any rule's likely-duplicate pairs, except pairs
/// people said are not duplicates.
pub async fn run(app: &App, entity: &Entity, progress: &Progress) -> ApiResult<Json> {
    let rules = &entity.def.duplicates;
    let mut blocks: Vec<Blocks> = rules.iter().map(|r| Blocks::new(rule_of(r))).collect();
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store::page_by_id(&app.db, entity, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id());
        for record in &page {
            ids.push(record.id());
            for (rule, blocks) in rules.iter().zip(&mut blocks) {
                blocks.add(forms(rule, |f| stored_text(entity, record, f)));
            }
        }
        progress.report(0, Some(ids.len() * rules.len())).await;
        if page.len() < PAGE as usize {
            break;
        }
    }
    let apart: HashSet<(Uuid, Uuid)> =
        crm_store::tasks::not_duplicates(&app.db, entity.name().as_str()).await?.into_iter().collect();
    let total = ids.len() * rules.len();
    let mut clusters = Clusters::new(ids.len());
    let mut best: HashMap<(u32, u32), u8> = HashMap::new();
    for (r, (rule, blocks)) in rules.iter().zip(&blocks).enumerate() {
        for at in 0..blocks.len() {
            for (other, score) in blocks.pairs_of(at, rule.threshold) {
                let (a, b) = (ids[at], ids[other as usize]);
                if apart.contains(&(a.min(b), a.max(b))) {
                    continue;
                }
                clusters.join(at as u32, other);
                let kept = best.entry((at as u32, other)).or_default();
                *kept = (*kept).max(score);
            }
            if at % STRIDE == STRIDE - 1 {
                progress.report(r * ids.len() + at + 1, Some(total)).await;
                tokio::task::yield_now().await;
            }
        }
    }
    let mut members: HashMap<u32, Vec<u32>> = HashMap::new();
    for at in 0..ids.len() as u32 {
        members.entry(clusters.root(at)).or_default().push(at);
    }
    let mut pairs: HashMap<u32, Vec<(u32, u32, u8)>> = HashMap::new();
    for (&(a, b), &score) in &best {
        pairs.entry(clusters.root(a)).or_default().push((a, b, score));
    }
    let mut found: Vec<(u8, Vec<Uuid>, Vec<Json>)> = members
        .into_iter()
        .filter(|(_, m)| m.len() > 1)
        .map(|(root, m)| {
            let mut joined = pairs.remove(&root).unwrap_or_default();
            joined.sort_unstable_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
            let score = joined.first().map_or(0, |p| p.2);
            let joined = joined.iter().map(|&(a, b, s)| json!([ids[a as usize], ids[b as usize], s])).collect();
            (score, m.iter().map(|&i| ids[i as usize]).collect(), joined)
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let count = found.len();
    found.truncate(MAX_CLUSTERS);
    let clusters: Vec<Json> =
        found.into_iter().map(|(score, ids, pairs)| json!({"score": score, "ids": ids, "pairs": pairs})).collect();
    Ok(json!({"records": ids.len(), "found": count, "clusters": clusters}))
}

/// Union-find over record numbers.
struct Clusters {
    parent: Vec<u32>,
}

impl Clusters {
    fn new(len: usize) -> Self {
        Clusters { parent: (0..len as u32).collect() }
    }

    fn root(&mut self, mut at: u32) -> u32 {
        while self.parent[at as usize] != at {
            let up = self.parent[self.parent[at as usize] as usize];
            self.parent[at as usize] = up;
            at = up;
        }
        at
    }

    fn join(&mut self, a: u32, b: u32) {
        let (a, b) = (self.root(a), self.root(b));
        if a != b {
            self.parent[a.max(b) as usize] = a.min(b);
        }
    }
}
