//! Search: one Tantivy index of the text of records, derived from the database and rebuilt
//! from it at will. Each searchable field of a record is one document, so that a search can
//! leave out the fields a caller may not see, and the records they may not read (by owner or
//! by id), inside the index query itself. A field's text is indexed twice: words found by
//! jieba for relevance, and character n-grams of its normalised form (full-width to
//! half-width, lower case, no spaces or punctuation) for recall on names that jieba splits
//! unexpectedly, typos and partial words.
//!
//! The caller says what changed ([`Change`]) and when it is committed (with the position in
//! the change log it has reached, kept in the index itself); the index performs nothing else.

use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query as TantivyQuery, TermQuery};
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TantivyDocument, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{NgramTokenizer, TextAnalyzer, TokenStream, Tokenizer};
use tantivy::{Index as TantivyIndex, IndexReader, IndexWriter, ReloadPolicy, Term, doc};
use uuid::Uuid;

mod collect;
pub mod matching;
mod simplify;

use collect::{Allowed, Best, ColumnCache, Ids};

use matching::Compare;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("search index folder: {0}")]
    Folder(#[from] std::io::Error),
    #[error("search index: {0}")]
    Open(#[from] tantivy::directory::error::OpenDirectoryError),
}

pub type Result<T> = std::result::Result<T, SearchError>;

/// The text of one record, as the index keeps it.
#[derive(Debug, Clone)]
pub struct Record {
    pub entity: String,
    pub id: Uuid,
    pub owner: Option<Uuid>,
    /// Searchable fields with a value: name and text.
    pub fields: Vec<(String, String)>,
}

/// What changed in the records the index follows.
#[derive(Debug, Clone)]
pub enum Change {
    /// A record as it is now (created, changed or restored).
    Put(Record),
    /// A record that no longer counts (deleted, or no longer searchable).
    Remove { entity: String, id: Uuid },
    /// Every record of an entity, before it is indexed again.
    Forget { entity: String },
}

/// The records of one entity a search may return.
#[derive(Debug, Clone)]
pub struct Target {
    pub entity: String,
    /// The fields the caller may see and search.
    pub fields: Vec<String>,
    pub scope: Scope,
}

/// Which records of an entity the caller may read.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// Those owned by one of `owners`, and the records `ids`.
    Within {
        owners: Vec<Uuid>,
        ids: Vec<Uuid>,
    },
}

/// A search: text, in what, how many records.
#[derive(Debug, Clone)]
pub struct Query<'a> {
    pub text: &'a str,
    pub targets: Vec<Target>,
    pub limit: usize,
}

/// A record found, by its best-matching field.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub entity: String,
    pub id: Uuid,
    pub field: String,
    pub score: f32,
    /// The field's text around the match, and the byte ranges in it that matched.
    pub fragment: String,
    pub highlights: Vec<Range<usize>>,
}

/// How big the index is.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub documents: u64,
    pub bytes: u64,
}

struct Fields {
    key: Field,
    entity: Field,
    /// The id's two halves as columns: a set of documents is turned into ids without
    /// reading their stored text.
    id_high: Field,
    id_low: Field,
    /// `entity.field`: what a search may look in, as one term, and as a column that a
    /// search reads for each document it finds (see [`Allowed`]).
    slot: Field,
    /// The owner's two halves as columns (the nil id for a record without an owner).
    owner_high: Field,
    owner_low: Field,
    /// The text as written, for fragments.
    shown: Field,
    /// Its words, normalised.
    text: Field,
    grams: Field,
    /// Whole values looked up as they are: `p:` a phone's digits, `e:` an e-mail, `x:` the
    /// plain text (for duplicate checks).
    keys: Field,
}

const WORDS: &str = "crm_words";
const GRAMS: &str = "crm_grams";
/// Memory the writer fills before it writes a segment.
const WRITER_HEAP: usize = 64 * 1024 * 1024;
/// A character pair in more than one document in this many is too common to look for
/// duplicates by.
const COMMON_SHARE: u64 = 50;
/// The longest fragment a hit shows, in characters.
const FRAGMENT_CHARS: usize = 80;

/// The index, with one reader and (once something is written) one writer for the whole
/// process. The writer is taken when first needed, so that a command that only reads (or
/// does not search) can open the app while a server writes.
pub struct Index {
    index: TantivyIndex,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    /// The position of the last commit, kept in memory: a list asks it on every request.
    reached: Mutex<Option<String>>,
    columns: ColumnCache,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(WORDS).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let grams = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(GRAMS).set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        entity: builder.add_text_field("entity", STRING),
        id_high: builder.add_u64_field("id_high", FAST),
        id_low: builder.add_u64_field("id_low", FAST),
        slot: builder.add_text_field("slot", STRING | FAST),
        owner_high: builder.add_u64_field("owner_high", FAST),
        owner_low: builder.add_u64_field("owner_low", FAST),
        shown: builder.add_text_field("shown", STORED),
        text: builder.add_text_field("text", words),
        grams: builder.add_text_field("grams", grams),
        keys: builder.add_text_field("keys", STRING),
    };
    (builder.build(), fields)
}

/// Full-width letters, digits and signs to their half-width forms, the ideographic space to
/// a space, and upper case to lower case.
pub fn normalise(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// What n-grams are taken from: the normalised text in simplified characters without spaces
/// and punctuation, so that `北京 立友信` and `北京立友信` meet, and so do 華為 and 华为.
fn gram_text(text: &str) -> String {
    normalise(text).chars().map(simplify::simplified).filter(|c| c.is_alphanumeric()).collect()
}

/// The whole-value keys of a field's text (see [`Fields::keys`]).
fn whole_keys(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    if !text.chars().any(char::is_alphabetic)
        && let Some(digits) = matching::phone_digits(text)
    {
        keys.push(format!("p:{digits}"));
    }
    if text.contains('@') {
        keys.push(format!("e:{}", text.trim().to_lowercase()));
    }
    if text.chars().count() <= 100 {
        keys.push(format!("x:{}", gram_text(text)));
    }
    keys
}

/// The key a comparable form of `compare` is looked up by, for those compared whole.
fn whole_key(compare: Compare, form: &str) -> Option<String> {
    match compare {
        Compare::Phone => Some(format!("p:{form}")),
        Compare::Email => Some(format!("e:{form}")),
        Compare::Exact => Some(format!("x:{form}")),
        Compare::Text | Compare::Company | Compare::Address => None,
    }
}

/// How a new index is made: its stored text (the fragments a search shows) is not
/// compressed, so that showing a hit reads it instead of unpacking a block around it.
fn builder(schema: Schema) -> tantivy::IndexBuilder {
    let settings = tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::None,
        ..tantivy::IndexSettings::default()
    };
    TantivyIndex::builder().schema(schema).settings(settings)
}

fn record_key(entity: &str, id: Uuid) -> String {
    format!("{entity}/{id}")
}

impl Index {
    /// Opens the index in a folder, creating it there if it is not.
    /// An index of another version's schema is derived data like any other: it is
    /// dropped and made again, and the caller, finding no position in it, rebuilds it.
    pub fn open(dir: &Path) -> Result<Index> {
        std::fs::create_dir_all(dir)?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = match builder(schema.clone()).open_or_create(directory) {
            Err(tantivy::TantivyError::SchemaError(_)) => {
                std::fs::remove_dir_all(dir)?;
                std::fs::create_dir_all(dir)?;
                builder(schema).open_or_create(tantivy::directory::MmapDirectory::open(dir)?)?
            }
            opened => opened?,
        };
        Self::ready(index, fields)
    }

    /// An index in memory, for tests.
    pub fn in_memory() -> Result<Index> {
        let (schema, fields) = schema();
        Self::ready(builder(schema).create_in_ram()?, fields)
    }

    fn ready(index: TantivyIndex, fields: Fields) -> Result<Index> {
        index.tokenizers().register(WORDS, TextAnalyzer::builder(tantivy_jieba::JiebaTokenizer::new()).build());
        index.tokenizers().register(GRAMS, TextAnalyzer::builder(NgramTokenizer::all_ngrams(1, 2)?).build());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let reached = Mutex::new(index.load_metas()?.payload);
        Ok(Index { index, reader, writer: Mutex::new(None), fields, reached, columns: ColumnCache::default() })
    }

    /// Runs `write` with the index's writer, taking it first if it has not been.
    fn with_writer<T>(&self, write: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        if writer.is_none() {
            *writer = Some(self.index.writer(WRITER_HEAP)?);
        }
        write(writer.as_mut().expect("taken just above"))
    }

    /// What the last commit said it had reached, if anything was ever committed.
    pub fn position(&self) -> Result<Option<String>> {
        Ok(self.reached.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// Stages changes; they are seen after the next [`Index::commit`].
    pub fn apply(&self, changes: Vec<Change>) -> Result<()> {
        self.with_writer(|writer| self.stage(writer, changes))
    }

    fn stage(&self, writer: &mut IndexWriter, changes: Vec<Change>) -> Result<()> {
        let f = &self.fields;
        for change in changes {
            match change {
                Change::Remove { entity, id } => {
                    writer.delete_term(Term::from_field_text(f.key, &record_key(&entity, id)));
                }
                Change::Forget { entity } => {
                    writer.delete_term(Term::from_field_text(f.entity, &entity));
                }
                Change::Put(record) => {
                    let key = record_key(&record.entity, record.id);
                    writer.delete_term(Term::from_field_text(f.key, &key));
                    let (high, low) = record.id.as_u64_pair();
                    let (owner_high, owner_low) = record.owner.unwrap_or_default().as_u64_pair();
                    for (field, text) in &record.fields {
                        let mut document = doc!(
                            f.key => key.as_str(),
                            f.entity => record.entity.as_str(),
                            f.id_high => high,
                            f.id_low => low,
                            f.slot => format!("{}.{field}", record.entity),
                            f.owner_high => owner_high,
                            f.owner_low => owner_low,
                            f.shown => text.as_str(),
                            f.text => normalise(text),
                            f.grams => gram_text(text),
                        );
                        for key in whole_keys(text) {
                            document.add_text(f.keys, &key);
                        }
                        writer.add_document(document)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Forgets every record (before a rebuild).
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|writer| Ok(writer.delete_all_documents()?))?;
        Ok(())
    }

    /// Makes staged changes seen, recording the position the caller has reached with them.
    pub fn commit(&self, position: &str) -> Result<()> {
        let committed = self.with_writer(|writer| {
            let mut prepared = writer.prepare_commit()?;
            prepared.set_payload(position);
            prepared.commit()?;
            Ok(())
        });
        if committed.is_err() {
            // A writer whose threads stopped (an I/O error, a full disk) fails every call from
            // then on: it is let go, with what it had staged, and the next change takes a
            // fresh one. The caller's position was not committed, so it stages them again.
            *self.writer.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        committed?;
        self.reader.reload()?;
        *self.reached.lock().unwrap_or_else(|e| e.into_inner()) = Some(position.to_owned());
        Ok(())
    }

    /// Documents and bytes on disk (or in memory).
    pub fn stats(&self) -> Result<Stats> {
        let searcher = self.reader.searcher();
        let bytes = searcher.space_usage()?.total().get_bytes();
        Ok(Stats { documents: searcher.num_docs(), bytes })
    }

    /// The n-gram query of a text: every gram of it must be there.
    fn grams_query(&self, text: &str) -> Option<Box<dyn TantivyQuery>> {
        let grams = grams_of(&gram_text(text));
        if grams.is_empty() {
            return None;
        }
        let terms: Vec<(Occur, Box<dyn TantivyQuery>)> = grams
            .iter()
            .map(|g| -> (Occur, Box<dyn TantivyQuery>) {
                let term = Term::from_field_text(self.fields.grams, g);
                (Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)))
            })
            .collect();
        Some(Box::new(BooleanQuery::new(terms)))
    }

    /// The words query of a text: every word of it, scored by BM25.
    fn words_query(&self, text: &str) -> Option<Box<dyn TantivyQuery>> {
        let words = words_of(&self.index, text);
        if words.is_empty() {
            return None;
        }
        let terms: Vec<(Occur, Box<dyn TantivyQuery>)> = words
            .into_iter()
            .map(|w| -> (Occur, Box<dyn TantivyQuery>) {
                let term = Term::from_field_text(self.fields.text, &w);
                (Occur::Must, Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)))
            })
            .collect();
        Some(Box::new(BooleanQuery::new(terms)))
    }

    /// Records matching a text, best first, at most `limit`, only within the targets.
    pub fn search(&self, query: &Query<'_>) -> Result<Vec<Hit>> {
        let text = query.text.trim();
        if text.is_empty() || query.targets.is_empty() || query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut matching: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
        if let Some(words) = self.words_query(text) {
            matching.push((Occur::Should, Box::new(BoostQuery::new(words, 2.0))));
        }
        if let Some(grams) = self.grams_query(text) {
            matching.push((Occur::Should, grams));
        }
        if matching.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let best = Best {
            allowed: Arc::new(Allowed::of(&query.targets)),
            limit: query.limit,
            columns: self.columns.of(&searcher)?,
        };
        let found = searcher.search(&BooleanQuery::new(matching), &best)?;
        let words = words_of(&self.index, text);
        let mut hits = Vec::with_capacity(found.len());
        for one in found {
            let (target, field) = &best.allowed.slots[one.slot];
            let target = &query.targets[*target];
            let document: TantivyDocument = searcher.doc(one.address)?;
            let shown = document.get_first(self.fields.shown).and_then(|v| v.as_str()).unwrap_or_default();
            let (fragment, highlights) = highlight(shown, text, &words);
            hits.push(Hit {
                entity: target.entity.clone(),
                id: Uuid::from_u128(one.id),
                field: target.fields[*field].clone(),
                score: one.score,
                fragment,
                highlights,
            });
        }
        Ok(hits)
    }

    /// Records of an entity whose field may be a duplicate of a value in its comparable
    /// form (see [`matching::comparable`]), best first, up to `limit`: those with the same
    /// whole value for fields compared whole, those sharing the most character pairs for
    /// fields compared by similarity.
    pub fn similar(&self, entity: &str, field: &str, compare: Compare, form: &str, limit: usize) -> Result<Vec<Uuid>> {
        let f = &self.fields;
        let searcher = self.reader.searcher();
        let slot = Term::from_field_text(f.slot, &format!("{entity}.{field}"));
        let looked_for: Box<dyn TantivyQuery> = match whole_key(compare, form) {
            Some(key) => Box::new(TermQuery::new(Term::from_field_text(f.keys, &key), IndexRecordOption::Basic)),
            None => {
                // Pairs in a large share of all documents (科技, 公司) rank nothing and cost the
                // most to score: the rarest pairs are asked, at least two of them.
                let mut pairs: Vec<(u64, Term)> = Vec::new();
                for pair in matching::keys(compare, form) {
                    let term = Term::from_field_text(f.grams, &pair);
                    pairs.push((searcher.doc_freq(&term)?, term));
                }
                pairs.sort_by_key(|(freq, _)| *freq);
                let common = searcher.num_docs() / COMMON_SHARE;
                let kept = pairs.iter().filter(|(freq, _)| *freq <= common).count().max(2);
                let terms: Vec<(Occur, Box<dyn TantivyQuery>)> = pairs
                    .into_iter()
                    .take(kept)
                    .map(|(_, term)| -> (Occur, Box<dyn TantivyQuery>) {
                        (Occur::Should, Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)))
                    })
                    .collect();
                Box::new(BooleanQuery::new(terms))
            }
        };
        let query = BooleanQuery::new(vec![
            (Occur::Must, looked_for),
            (Occur::Must, Box::new(TermQuery::new(slot, IndexRecordOption::Basic))),
        ]);
        let found = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        self.ids_of(&searcher, found.into_iter().map(|(_, address)| address))
    }

    /// The record ids of documents, from their id columns.
    fn ids_of(
        &self,
        searcher: &tantivy::Searcher,
        addresses: impl IntoIterator<Item = tantivy::DocAddress>,
    ) -> Result<Vec<Uuid>> {
        let columns = self.columns.of(searcher)?;
        let mut ids = Vec::new();
        let mut seen = HashSet::new();
        for address in addresses {
            if let Some(id) = columns[address.segment_ord as usize].id(address.doc_id).map(Uuid::from_u128)
                && seen.insert(id)
            {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Every record of an entity whose field contains `text` as n-grams do (a superset of
    /// the records whose field contains it as a substring), up to `max`; `None` when more
    /// match, or when the text is too short to narrow anything.
    pub fn containing(&self, entity: &str, field: &str, text: &str, max: usize) -> Result<Option<Vec<Uuid>>> {
        let Some(grams) = self.grams_query(text) else { return Ok(None) };
        let f = &self.fields;
        let slot = Term::from_field_text(f.slot, &format!("{entity}.{field}"));
        let whole = BooleanQuery::new(vec![
            (Occur::Must, grams),
            (Occur::Must, Box::new(TermQuery::new(slot, IndexRecordOption::Basic))),
        ]);
        let searcher = self.reader.searcher();
        let found = searcher.search(&whole, &Ids { max, columns: self.columns.of(&searcher)? })?;
        Ok(found.map(|ids| ids.into_iter().map(Uuid::from_u128).collect()))
    }
}

/// The words jieba finds in a text, normalised, as the index keeps them.
fn words_of(index: &TantivyIndex, text: &str) -> Vec<String> {
    let Ok(mut analyzer) = index.tokenizers().get(WORDS).ok_or(()) else { return Vec::new() };
    let text = normalise(text);
    let mut stream = analyzer.token_stream(&text);
    let mut words = Vec::new();
    while let Some(token) = stream.next() {
        if !token.text.trim().is_empty() && !words.contains(&token.text) {
            words.push(token.text.clone());
        }
    }
    words
}

/// The n-grams a text must all have to contain another: its 2-grams, or the character
/// itself for one character.
fn grams_of(text: &str) -> Vec<String> {
    let mut tokenizer = NgramTokenizer::all_ngrams(2, 2).expect("2 ≤ 2");
    let chars = text.chars().count();
    if chars == 0 {
        return Vec::new();
    }
    if chars == 1 {
        return vec![text.to_owned()];
    }
    let mut stream = tokenizer.token_stream(text);
    let mut grams = Vec::new();
    while let Some(token) = stream.next() {
        if !grams.contains(&token.text) {
            grams.push(token.text.clone());
        }
    }
    grams
}

/// A fragment of a field's text around its first match, and where in it the query (or one
/// of its words) appears, compared without case or width.
fn highlight(text: &str, query: &str, words: &[String]) -> (String, Vec<Range<usize>>) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let folded: Vec<char> = chars.iter().map(|(_, c)| normalise(&c.to_string()).chars().next().unwrap_or(*c)).collect();
    let mut needles: Vec<Vec<char>> = vec![normalise(query).chars().collect()];
    needles.extend(words.iter().map(|w| normalise(w).chars().collect()));
    let mut marks: Vec<Range<usize>> = Vec::new();
    for needle in needles.iter().filter(|n| !n.is_empty() && n.iter().any(|c| !c.is_whitespace())) {
        let mut start = 0;
        while start + needle.len() <= folded.len() {
            if folded[start..start + needle.len()] == needle[..] {
                marks.push(start..start + needle.len());
                start += needle.len();
            } else {
                start += 1;
            }
        }
    }
    marks.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    let mut merged: Vec<Range<usize>> = Vec::new();
    for mark in marks {
        match merged.last_mut() {
            Some(last) if mark.start <= last.end => last.end = last.end.max(mark.end),
            _ => merged.push(mark),
        }
    }
    let first = merged.first().map_or(0, |r| r.start);
    let from = first.saturating_sub(FRAGMENT_CHARS / 4);
    let to = (from + FRAGMENT_CHARS).min(chars.len());
    let byte = |i: usize| chars.get(i).map_or(text.len(), |(b, _)| *b);
    let (start, end) = (byte(from), byte(to));
    let highlights = merged
        .into_iter()
        .filter(|r| r.start >= from && r.end <= to)
        .map(|r| byte(r.start) - start..byte(r.end) - start)
        .collect();
    (text[start..end].to_owned(), highlights)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn customer(name: &str, owner: Uuid) -> (Uuid, Change) {
        let id = Uuid::now_v7();
        let record = Record {
            entity: "customer".into(),
            id,
            owner: Some(owner),
            fields: vec![("name".into(), name.into()), ("code".into(), format!("C{}", name.len()))],
        };
        (id, Change::Put(record))
    }

    fn everyone(limit: usize) -> Vec<Target> {
        let _ = limit;
        vec![Target { entity: "customer".into(), fields: vec!["name".into()], scope: Scope::All }]
    }

    #[test]
    fn chinese_names_are_found_by_words_and_by_parts() {
        let index = Index::in_memory().unwrap();
        let owner = Uuid::now_v7();
        let (lixin, a) = customer("北京立友信科技有限公司", owner);
        let (_, b) = customer("上海友信贸易有限公司", owner);
        let (wide, c) = customer("深圳ＡＢＣ电子１２３", owner);
        index.apply(vec![a, b, c]).unwrap();
        index.commit("1").unwrap();
        assert_eq!(index.position().unwrap().as_deref(), Some("1"));
        let find = |text: &str| {
            index
                .search(&Query { text, targets: everyone(10), limit: 10 })
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(find("立友信")[0], lixin, "a word of the name");
        assert_eq!(find("立友"), vec![lixin], "two characters of a word");
        assert_eq!(find("abc"), vec![wide], "full-width letters, any case");
        assert_eq!(find("电子123"), vec![wide], "full-width digits");
        let hit = &index.search(&Query { text: "立友", targets: everyone(10), limit: 10 }).unwrap()[0];
        assert_eq!(&hit.fragment[hit.highlights[0].clone()], "立友");
        assert!(find("广州").is_empty());
    }

    #[test]
    fn a_search_stays_within_its_scope_and_fields() {
        let index = Index::in_memory().unwrap();
        let (mine_owner, theirs_owner) = (Uuid::now_v7(), Uuid::now_v7());
        let (mine, a) = customer("华东重工集团", mine_owner);
        let (theirs, b) = customer("华东重工机械", theirs_owner);
        let (shared, c) = customer("华东重工设备", theirs_owner);
        index.apply(vec![a, b, c]).unwrap();
        index.commit("1").unwrap();
        let scope = Scope::Within { owners: vec![mine_owner], ids: vec![shared] };
        let targets = vec![Target { entity: "customer".into(), fields: vec!["name".into()], scope }];
        let mut found: Vec<Uuid> =
            index.search(&Query { text: "华东重工", targets, limit: 10 }).unwrap().into_iter().map(|h| h.id).collect();
        found.sort();
        let mut expected = vec![mine, shared];
        expected.sort();
        assert_eq!(found, expected, "{theirs} is out of scope");
        let codes = vec![Target { entity: "customer".into(), fields: vec!["code".into()], scope: Scope::All }];
        assert!(index.search(&Query { text: "华东", targets: codes, limit: 10 }).unwrap().is_empty(), "not in codes");
    }

    #[test]
    fn a_record_found_in_several_fields_counts_once_and_the_limit_holds() {
        let index = Index::in_memory().unwrap();
        let owner = Uuid::now_v7();
        let mut changes = Vec::new();
        let mut twice = Uuid::nil();
        for n in 0..300 {
            let id = Uuid::now_v7();
            let name = if n == 7 { "华东华东华东重工".to_owned() } else { format!("华东{n}号仓库") };
            let code = if n == 7 { "华东".to_owned() } else { format!("C{n}") };
            if n == 7 {
                twice = id;
            }
            let fields = vec![("name".into(), name), ("code".into(), code)];
            changes.push(Change::Put(Record { entity: "customer".into(), id, owner: Some(owner), fields }));
        }
        index.apply(changes).unwrap();
        index.commit("1").unwrap();
        let targets =
            vec![Target { entity: "customer".into(), fields: vec!["name".into(), "code".into()], scope: Scope::All }];
        let hits = index.search(&Query { text: "华东", targets, limit: 5 }).unwrap();
        assert_eq!(hits.len(), 5);
        let mut ids: Vec<Uuid> = hits.iter().map(|h| h.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "each record once");
        assert_eq!(hits[0].id, twice, "the record whose field is all 华东 ranks first");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    }

    #[test]
    fn an_index_of_another_schema_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = Schema::builder();
        other.add_text_field("something_else", STRING);
        TantivyIndex::create_in_dir(dir.path(), other.build()).unwrap();
        let index = Index::open(dir.path()).unwrap();
        assert_eq!(index.position().unwrap(), None, "empty: the caller rebuilds it");
        let (_, put) = customer("重建的索引", Uuid::now_v7());
        index.apply(vec![put]).unwrap();
        index.commit("1").unwrap();
        drop(index);
        assert_eq!(Index::open(dir.path()).unwrap().position().unwrap().as_deref(), Some("1"), "and kept");
    }

    #[test]
    fn a_removed_or_changed_record_is_found_as_it_is_now() {
        let index = Index::in_memory().unwrap();
        let owner = Uuid::now_v7();
        let (id, put) = customer("旧名字公司", owner);
        index.apply(vec![put]).unwrap();
        index.commit("1").unwrap();
        let renamed = Record {
            entity: "customer".into(),
            id,
            owner: Some(owner),
            fields: vec![("name".into(), "新名字公司".into())],
        };
        index.apply(vec![Change::Put(renamed)]).unwrap();
        index.commit("2").unwrap();
        let find = |text: &str| index.search(&Query { text, targets: everyone(10), limit: 10 }).unwrap().len();
        assert_eq!((find("旧名字"), find("新名字")), (0, 1));
        assert_eq!(index.containing("customer", "name", "名字", 100).unwrap(), Some(vec![id]));
        index.apply(vec![Change::Remove { entity: "customer".into(), id }]).unwrap();
        index.commit("3").unwrap();
        assert_eq!(find("新名字"), 0);
    }
}
