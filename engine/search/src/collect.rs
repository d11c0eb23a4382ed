//! Collectors that read the columns of the documents a text query finds. A search checks
//! what it may return on each document found (its slot, the record's id and owner) and keeps
//! the best records: a filter built as a query instead (a set of slots, owners and ids)
//! makes Tantivy mark every document of every allowed slot before it looks at the text,
//! most of the index on every search. A `contains` filter takes the ids found, up to a
//! bound, in the same one pass.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::index::SegmentId;
use tantivy::{DocAddress, DocId, Score, Searcher, SegmentOrdinal, SegmentReader};

use crate::{Scope, Target};

/// The columns read of one segment: opening one reads the segment's directory of columns,
/// which costs more than a search of a few characters, so each is opened once.
pub(crate) struct Columns {
    /// The slot column's term ordinals, and the slot each ordinal stands for.
    slots: Option<(Column<u64>, Vec<String>)>,
    id: (Column<u64>, Column<u64>),
    owner: (Column<u64>, Column<u64>),
}

impl Columns {
    fn open(reader: &SegmentReader) -> tantivy::Result<Columns> {
        let fast = reader.fast_fields();
        let slots = match fast.str("slot")? {
            Some(column) => {
                let mut names = Vec::with_capacity(column.num_terms());
                let mut terms = column.dictionary().stream()?;
                while terms.advance() {
                    names.push(String::from_utf8_lossy(terms.key()).into_owned());
                }
                Some((column.ords().clone(), names))
            }
            None => None,
        };
        Ok(Columns {
            slots,
            id: (fast.u64("id_high")?, fast.u64("id_low")?),
            owner: (fast.u64("owner_high")?, fast.u64("owner_low")?),
        })
    }

    /// The record id of a document.
    pub fn id(&self, doc: DocId) -> Option<u128> {
        pair(&self.id, doc)
    }
}

/// The opened columns of the segments searched lately.
#[derive(Default)]
pub(crate) struct ColumnCache(Mutex<HashMap<SegmentId, Arc<Columns>>>);

impl ColumnCache {
    /// The columns of each segment of a searcher, in its segments' order.
    pub fn of(&self, searcher: &Searcher) -> tantivy::Result<Vec<Arc<Columns>>> {
        let mut cache = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let segments = searcher.segment_readers();
        cache.retain(|id, _| segments.iter().any(|s| s.segment_id() == *id));
        let mut columns = Vec::with_capacity(segments.len());
        for segment in segments {
            let opened = match cache.get(&segment.segment_id()) {
                Some(opened) => opened.clone(),
                None => {
                    let opened = Arc::new(Columns::open(segment)?);
                    cache.insert(segment.segment_id(), opened.clone());
                    opened
                }
            };
            columns.push(opened);
        }
        Ok(columns)
    }
}

/// The slots (`entity.field`) a search looks in, and the records of each target it may
/// return.
pub(crate) struct Allowed {
    /// Each slot's target and the field's place among the target's fields.
    pub slots: Vec<(usize, usize)>,
    /// Each slot's place in `slots` by its name.
    index: HashMap<String, usize>,
    scopes: Vec<Option<Within>>,
}

/// The owners and ids of a scoped target, as the columns hold them.
struct Within {
    owners: HashSet<u128>,
    ids: HashSet<u128>,
}

impl Allowed {
    pub fn of(targets: &[Target]) -> Allowed {
        let mut allowed = Allowed { slots: Vec::new(), index: HashMap::new(), scopes: Vec::new() };
        for (t, target) in targets.iter().enumerate() {
            for (f, field) in target.fields.iter().enumerate() {
                allowed.index.insert(format!("{}.{field}", target.entity), allowed.slots.len());
                allowed.slots.push((t, f));
            }
            allowed.scopes.push(match &target.scope {
                Scope::All => None,
                Scope::Within { owners, ids } => Some(Within {
                    owners: owners.iter().map(|o| o.as_u128()).collect(),
                    ids: ids.iter().map(|i| i.as_u128()).collect(),
                }),
            });
        }
        allowed
    }
}

/// A document found: its record's best-scoring field.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Found {
    pub score: Score,
    pub address: DocAddress,
    /// Its place in [`Allowed::slots`].
    pub slot: usize,
    target: usize,
    pub id: u128,
}

/// The `limit` best records among the allowed documents, each by its best field.
pub(crate) struct Best {
    pub allowed: Arc<Allowed>,
    pub limit: usize,
    pub columns: Vec<Arc<Columns>>,
}

/// Keeps the best document of each record, and of those the `limit` best.
fn best_of(mut found: Vec<Found>, limit: usize) -> Vec<Found> {
    found.sort_by(|a, b| (a.target, a.id).cmp(&(b.target, b.id)).then(b.score.total_cmp(&a.score)));
    found.dedup_by_key(|f| (f.target, f.id));
    found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.address.cmp(&b.address)));
    found.truncate(limit);
    found
}

impl Collector for Best {
    type Fruit = Vec<Found>;
    type Child = BestIn;

    fn for_segment(&self, segment: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<BestIn> {
        let columns = self.columns[segment as usize].clone();
        let slot_of = columns
            .slots
            .as_ref()
            .map(|(_, names)| names.iter().map(|name| self.allowed.index.get(name).copied()).collect())
            .unwrap_or_default();
        Ok(BestIn { allowed: self.allowed.clone(), segment, limit: self.limit, columns, slot_of, found: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Found>>) -> tantivy::Result<Vec<Found>> {
        Ok(best_of(fruits.into_iter().flatten().collect(), self.limit))
    }
}

pub(crate) struct BestIn {
    allowed: Arc<Allowed>,
    segment: SegmentOrdinal,
    limit: usize,
    columns: Arc<Columns>,
    /// The allowed slot of each of the slot column's term ordinals.
    slot_of: Vec<Option<usize>>,
    found: Vec<Found>,
}

fn pair(columns: &(Column<u64>, Column<u64>), doc: DocId) -> Option<u128> {
    Some((u128::from(columns.0.first(doc)?) << 64) | u128::from(columns.1.first(doc)?))
}

impl SegmentCollector for BestIn {
    type Fruit = Vec<Found>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let Some((ords, _)) = &self.columns.slots else { return };
        let Some(slot) = ords.first(doc).and_then(|ord| self.slot_of.get(ord as usize).copied().flatten()) else {
            return;
        };
        let target = self.allowed.slots[slot].0;
        let Some(id) = self.columns.id(doc) else { return };
        if let Some(within) = &self.allowed.scopes[target] {
            let owned = pair(&self.columns.owner, doc).is_some_and(|owner| within.owners.contains(&owner));
            if !owned && !within.ids.contains(&id) {
                return;
            }
        }
        self.found.push(Found { score, address: DocAddress::new(self.segment, doc), slot, target, id });
        // A text found in most of the index keeps only what can still be among the best.
        if self.found.len() >= 8 * self.limit.max(16) {
            self.found = best_of(std::mem::take(&mut self.found), self.limit);
        }
    }

    fn harvest(self) -> Vec<Found> {
        best_of(self.found, self.limit)
    }
}

/// The ids of the records found, or `None` once there are more than `max`.
pub(crate) struct Ids {
    pub max: usize,
    pub columns: Vec<Arc<Columns>>,
}

impl Collector for Ids {
    type Fruit = Option<Vec<u128>>;
    type Child = IdsIn;

    fn for_segment(&self, segment: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<IdsIn> {
        Ok(IdsIn { max: self.max, columns: self.columns[segment as usize].clone(), ids: Some(Vec::new()) })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Option<Vec<u128>>>) -> tantivy::Result<Option<Vec<u128>>> {
        let Some(mut all) = fruits.into_iter().collect::<Option<Vec<Vec<u128>>>>().map(|all| all.concat()) else {
            return Ok(None);
        };
        all.sort_unstable();
        all.dedup();
        Ok((all.len() <= self.max).then_some(all))
    }
}

pub(crate) struct IdsIn {
    max: usize,
    columns: Arc<Columns>,
    ids: Option<Vec<u128>>,
}

impl SegmentCollector for IdsIn {
    type Fruit = Option<Vec<u128>>;

    fn collect(&mut self, doc: DocId, _: Score) {
        let Some(ids) = &mut self.ids else { return };
        if ids.len() == self.max {
            self.ids = None;
        } else if let Some(id) = self.columns.id(doc) {
            ids.push(id);
        }
    }

    fn harvest(self) -> Option<Vec<u128>> {
        self.ids
    }
}
