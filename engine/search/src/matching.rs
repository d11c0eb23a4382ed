//! Whether two records are likely the same: values normalised the way Chinese company data
//! varies (full-width digits, traditional characters, 有限公司 or not, 北京 before the name or
//! （北京） inside it, phones with or without +86 and the trunk 0, addresses with or without
//! the province), then compared field by field and weighed into a score from 0 to 100.
//!
//! The same functions serve the check at entry (candidates from the index) and the duplicate
//! scan (candidates from [`Blocks`]), so both find the same pairs.

use std::collections::HashMap;

use crate::normalise;
use crate::simplify::simplified;

/// How one field of two records is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Equal once normalised.
    Exact,
    /// Character similarity of the normalised text.
    Text,
    /// A company name without its company suffix and place names, then similarity.
    Company,
    /// The digits without +86 and the trunk 0.
    Phone,
    /// Equal ignoring case.
    Email,
    /// Similarity without the province and city.
    Address,
}

/// A rule: the fields compared, each with its weight, in the order of the values given to
/// [`score`].
#[derive(Debug, Clone)]
pub struct Rule {
    pub fields: Vec<(Compare, u32)>,
}

/// Company forms, longest first: what is taken off the end of a name.
const SUFFIXES: &[&str] = &[
    "集团股份有限公司",
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "控股集团",
    "集团公司",
    "有限公司",
    "分公司",
    "集团",
    "公司",
    "corporation",
    "company",
    "limited",
    "coltd",
    "ltd",
    "inc",
    "corp",
];

/// Provinces, regions and the larger cities, as they begin names and addresses.
const PLACES: &[&str] = &[
    "中国",
    "北京",
    "天津",
    "上海",
    "重庆",
    "河北",
    "山西",
    "辽宁",
    "吉林",
    "黑龙江",
    "江苏",
    "浙江",
    "安徽",
    "福建",
    "江西",
    "山东",
    "河南",
    "湖北",
    "湖南",
    "广东",
    "海南",
    "四川",
    "贵州",
    "云南",
    "陕西",
    "甘肃",
    "青海",
    "台湾",
    "内蒙古",
    "广西",
    "西藏",
    "宁夏",
    "新疆",
    "香港",
    "澳门",
    "深圳",
    "广州",
    "杭州",
    "南京",
    "苏州",
    "成都",
    "武汉",
    "西安",
    "长沙",
    "郑州",
    "济南",
    "青岛",
    "大连",
    "沈阳",
    "厦门",
    "宁波",
    "无锡",
    "合肥",
    "福州",
    "昆明",
    "南昌",
    "石家庄",
    "太原",
    "哈尔滨",
    "长春",
    "南宁",
    "贵阳",
    "兰州",
    "乌鲁木齐",
    "呼和浩特",
    "银川",
    "西宁",
    "拉萨",
    "海口",
    "三亚",
    "东莞",
    "佛山",
    "珠海",
    "中山",
    "惠州",
    "温州",
    "常州",
    "南通",
    "徐州",
    "扬州",
    "烟台",
    "潍坊",
    "泉州",
    "嘉兴",
    "绍兴",
    "金华",
    "台州",
    "洛阳",
    "唐山",
    "保定",
    "廊坊",
];

/// What may follow a place name: 省, 市, and the forms of the autonomous regions.
const PLACE_FORMS: &[&str] = &["维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市"];

/// Lower case, half-width, simplified, and only letters and digits: what two spellings of
/// one value have in common.
fn plain(text: &str) -> String {
    normalise(text).chars().map(simplified).filter(|c| c.is_alphanumeric()).collect()
}

/// A place (with its 省 or 市) at the start of `text`: its length in bytes.
fn place_at_start(text: &str) -> Option<usize> {
    let place = PLACES.iter().filter(|p| text.starts_with(**p)).max_by_key(|p| p.len())?;
    let rest = &text[place.len()..];
    let form = PLACE_FORMS.iter().find(|f| rest.starts_with(**f)).map_or(0, |f| f.len());
    Some(place.len() + form)
}

/// Takes places off the start while something is left after them.
fn without_leading_places(mut text: &str) -> &str {
    while let Some(len) = place_at_start(text) {
        if text.len() - len < 2 * '中'.len_utf8() {
            break;
        }
        text = &text[len..];
    }
    text
}

/// Parenthesised places (立友信科技（北京）有限公司) are left out; other brackets keep their text.
fn without_bracketed_places(text: &str) -> String {
    let text = normalise(text).replace(['（', '【', '['], "(").replace(['）', '】', ']'], ")");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close) => {
                let inside = plain(&after[..close]);
                let is_place = place_at_start(&inside).is_some_and(|len| len == inside.len());
                if !is_place {
                    out.push_str(&after[..close]);
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(after);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The name of a company without what varies between spellings of it: 北京立友信科技有限公司,
/// 立友信科技（北京）有限公司 and 北京立友信科技公司 all come to 立友信科技.
pub fn company_core(name: &str) -> String {
    let mut core = plain(&without_bracketed_places(name));
    while let Some(suffix) = SUFFIXES.iter().find(|s| core.ends_with(**s) && core.len() > s.len()) {
        core.truncate(core.len() - suffix.len());
    }
    without_leading_places(&core).to_owned()
}

/// An address without the province and city, which one writer puts and another leaves out.
pub fn address_core(address: &str) -> String {
    let text = plain(address);
    without_leading_places(&text).to_owned()
}

/// The digits of a phone number without the country code and the trunk 0: 010-62345678 and
/// +86 10 6234 5678 are both 1062345678. `None` when there are too few digits for a number.
pub fn phone_digits(phone: &str) -> Option<String> {
    let digits: String = normalise(phone).chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.strip_prefix("0086") {
        Some(rest) => rest,
        None if digits.len() >= 12 && digits.starts_with("86") => &digits[2..],
        None => &digits,
    };
    let digits = digits.trim_start_matches('0');
    (digits.len() >= 7).then(|| digits.to_owned())
}

/// How alike two texts are, from 0 (nothing in common) to 1 (the same): one minus the edit
/// distance over the longer length, in characters.
pub fn similarity(a: &str, b: &str) -> f64 {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 0.0;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diagonal + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    1.0 - row[b.len()] as f64 / longer as f64
}

/// The form of a value that is compared: `None` when nothing comparable is left.
pub fn comparable(compare: Compare, value: &str) -> Option<String> {
    let form = match compare {
        Compare::Exact | Compare::Text => plain(value),
        Compare::Company => company_core(value),
        Compare::Phone => return phone_digits(value),
        Compare::Email => value.trim().to_lowercase(),
        Compare::Address => address_core(value),
    };
    (!form.is_empty()).then_some(form)
}

/// How alike two comparable forms (from [`comparable`]) are, from 0 to 1.
pub fn compare(compare: Compare, a: &str, b: &str) -> f64 {
    match compare {
        Compare::Exact | Compare::Email => f64::from(u8::from(a == b)),
        // A number written without its area code is the same line.
        Compare::Phone if a == b => 1.0,
        Compare::Phone if a.len().min(b.len()) >= 7 && (a.ends_with(b) || b.ends_with(a)) => 0.9,
        Compare::Phone => 0.0,
        Compare::Text | Compare::Company | Compare::Address => similarity(a, b),
    }
}

/// How alike a field counts when one of the two records lacks it: neither for nor against.
const UNKNOWN: f64 = 0.5;

/// The score (0–100) of two records under a rule, from their comparable forms field by
/// field: the weighted mean of the fields' likeness, a field one of them lacks counting as
/// half alike — so a name that only resembles another's, with nothing else to go by, is not
/// enough. `None` when they have no field in common.
pub fn score(rule: &Rule, a: &[Option<String>], b: &[Option<String>]) -> Option<u8> {
    let (mut sum, mut weights, mut compared) = (0.0, 0, false);
    for (i, &(kind, weight)) in rule.fields.iter().enumerate() {
        let likeness = match (a.get(i), b.get(i)) {
            (Some(Some(a)), Some(Some(b))) => {
                compared = true;
                compare(kind, a, b)
            }
            _ => UNKNOWN,
        };
        sum += f64::from(weight) * likeness;
        weights += weight;
    }
    (compared && weights > 0).then(|| (100.0 * sum / f64::from(weights)).round() as u8)
}

/// The keys under which a comparable form is looked for: the form itself for fields
/// compared whole, its character pairs for fields compared by similarity.
pub fn keys(compare: Compare, form: &str) -> Vec<String> {
    match compare {
        Compare::Exact | Compare::Email | Compare::Phone => vec![form.to_owned()],
        Compare::Text | Compare::Company | Compare::Address => {
            let chars: Vec<char> = form.chars().collect();
            if chars.len() < 2 {
                return vec![form.to_owned()];
            }
            let mut pairs: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
            pairs.sort_unstable();
            pairs.dedup();
            pairs
        }
    }
}

/// Keys shared by more records than this say nothing about any two of them (科技, 公司).
const COMMON: usize = 200;

/// Candidate pairs for a duplicate scan over many records: records that share a whole key
/// (a phone, an e-mail), or enough character pairs of a name or address, without comparing
/// every record with every other.
pub struct Blocks {
    rule: Rule,
    /// Each record's comparable forms, in the rule's field order.
    forms: Vec<Vec<Option<String>>>,
    postings: HashMap<(usize, String), Vec<u32>>,
}

impl Blocks {
    pub fn new(rule: Rule) -> Self {
        Blocks { rule, forms: Vec::new(), postings: HashMap::new() }
    }

    /// Adds a record by its comparable forms; returns its number.
    pub fn add(&mut self, forms: Vec<Option<String>>) -> u32 {
        let at = self.forms.len() as u32;
        for (i, form) in forms.iter().enumerate() {
            let (Some(form), Some(&(kind, _))) = (form, self.rule.fields.get(i)) else { continue };
            for key in keys(kind, form) {
                self.postings.entry((i, key)).or_default().push(at);
            }
        }
        self.forms.push(forms);
        at
    }

    pub fn len(&self) -> usize {
        self.forms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// The records after record `at` that score at least `threshold` with it, with their
    /// scores: called for every record, this gives every such pair once.
    pub fn pairs_of(&self, at: usize, threshold: u8) -> Vec<(u32, u8)> {
        let Some(forms) = self.forms.get(at) else { return Vec::new() };
        let mut shared: HashMap<u32, (u32, bool)> = HashMap::new();
        let mut few_pairs = false;
        for (i, form) in forms.iter().enumerate() {
            let (Some(form), Some(&(kind, _))) = (form, self.rule.fields.get(i)) else { continue };
            let whole = matches!(kind, Compare::Exact | Compare::Email | Compare::Phone);
            let keys = keys(kind, form);
            few_pairs |= !whole && keys.len() <= 3;
            for key in keys {
                let Some(others) = self.postings.get(&(i, key)) else { continue };
                if others.len() > COMMON {
                    continue;
                }
                for &other in others.iter().filter(|&&o| o as usize > at) {
                    let entry = shared.entry(other).or_default();
                    entry.0 += 1;
                    entry.1 |= whole;
                }
            }
        }
        let mut found: Vec<(u32, u8)> = shared
            .into_iter()
            .filter(|&(_, (count, whole))| whole || count >= 2 || few_pairs)
            .filter_map(|(other, _)| {
                let score = score(&self.rule, forms, &self.forms[other as usize])?;
                (score >= threshold).then_some((other, score))
            })
            .collect();
        found.sort_unstable();
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_company_come_to_one_core() {
        for name in [
            "北京立友信科技有限公司",
            "立友信科技（北京）有限公司",
            "北京立友信科技公司",
            "北京市立友信科技有限责任公司",
        ] {
            assert_eq!(company_core(name), "立友信科技", "{name}");
        }
        assert_eq!(company_core("華為技術有限公司"), company_core("华为技术有限公司"));
        assert_eq!(company_core("ＡＢＣ Trading Co., Ltd."), "abctrading");
        // A name that is only a place keeps it.
        assert_eq!(company_core("北京公司"), "北京");
    }

    #[test]
    fn phones_lose_country_code_trunk_zero_and_separators() {
        assert_eq!(phone_digits("010-62345678").as_deref(), Some("1062345678"));
        assert_eq!(phone_digits("+86 10 6234 5678").as_deref(), Some("1062345678"));
        assert_eq!(phone_digits("０１０－６２３４５６７８").as_deref(), Some("1062345678"));
        assert_eq!(phone_digits("+86 138 1234 5678").as_deref(), Some("13812345678"));
        assert_eq!(phone_digits("123"), None);
        assert_eq!(compare(Compare::Phone, "1062345678", "62345678"), 0.9);
    }

    #[test]
    fn addresses_with_and_without_the_province_meet() {
        assert_eq!(address_core("北京市海淀区中关村大街1号"), address_core("海淀区中关村大街１号"));
        assert_eq!(address_core("广东省深圳市南山区科技园"), "南山区科技园");
    }

    #[test]
    fn a_rule_weighs_the_fields_both_records_have() {
        let rule = Rule { fields: vec![(Compare::Company, 60), (Compare::Phone, 40)] };
        let form = |name: &str, phone: Option<&str>| {
            vec![comparable(Compare::Company, name), phone.and_then(|p| comparable(Compare::Phone, p))]
        };
        let a = form("北京立友信科技有限公司", Some("010-62345678"));
        assert_eq!(score(&rule, &a, &form("立友信科技（北京）有限公司", Some("+86 10 6234 5678"))), Some(100));
        assert_eq!(score(&rule, &a, &form("北京立友信科技公司", None)), Some(80));
        assert_eq!(score(&rule, &a, &form("上海东方明珠贸易有限公司", Some("021-58888888"))), Some(0));
        assert_eq!(score(&rule, &[None, None], &a), None);
    }

    #[test]
    fn blocks_find_the_pairs_a_full_comparison_finds() {
        let rule = Rule { fields: vec![(Compare::Company, 70), (Compare::Phone, 30)] };
        let names = [
            ("北京立友信科技有限公司", "010-62345678"),
            ("立友信科技（北京）有限公司", "+86 10 6234 5678"),
            ("北京立有信科技有限公司", "010-62345678"),
            ("上海东方明珠贸易有限公司", "021-58888888"),
            ("深圳华强电子有限公司", "0755-83000000"),
            ("深圳华强电子公司", ""),
        ];
        let forms: Vec<Vec<Option<String>>> =
            names.iter().map(|(n, p)| vec![comparable(Compare::Company, n), comparable(Compare::Phone, p)]).collect();
        let mut blocks = Blocks::new(rule.clone());
        for f in &forms {
            blocks.add(f.clone());
        }
        let mut all = Vec::new();
        for i in 0..forms.len() {
            for j in i + 1..forms.len() {
                if let Some(s) = score(&rule, &forms[i], &forms[j]).filter(|s| *s >= 80) {
                    all.push((i as u32, j as u32, s));
                }
            }
        }
        let pairs: Vec<(u32, u32, u8)> = (0..blocks.len())
            .flat_map(|i| blocks.pairs_of(i, 80).into_iter().map(move |(j, s)| (i as u32, j, s)))
            .collect();
        assert_eq!(pairs, all);
        assert_eq!(all.iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(), vec![(0, 1), (0, 2), (1, 2), (4, 5)]);
    }
}
