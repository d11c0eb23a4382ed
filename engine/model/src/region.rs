//! Regions of China: a province-level division, optionally followed by `/` and a city.

/// The 34 province-level divisions, by their full names.
pub const PROVINCES: [&str; 34] = [
    "北京市",
    "天津市",
    "河北省",
    "山西省",
    "内蒙古自治区",
    "辽宁省",
    "吉林省",
    "黑龙江省",
    "上海市",
    "江苏省",
    "浙江省",
    "安徽省",
    "福建省",
    "江西省",
    "山东省",
    "河南省",
    "湖北省",
    "湖南省",
    "广东省",
    "广西壮族自治区",
    "海南省",
    "重庆市",
    "四川省",
    "贵州省",
    "云南省",
    "西藏自治区",
    "陕西省",
    "甘肃省",
    "青海省",
    "宁夏回族自治区",
    "新疆维吾尔自治区",
    "台湾省",
    "香港特别行政区",
    "澳门特别行政区",
];

const SUFFIXES: [&str; 6] = ["壮族自治区", "回族自治区", "维吾尔自治区", "特别行政区", "自治区", "省"];

/// The short name people write: 广东 for 广东省, 广西 for 广西壮族自治区, 北京 for 北京市.
fn short_name(full: &str) -> &str {
    SUFFIXES.iter().find_map(|s| full.strip_suffix(s)).or_else(|| full.strip_suffix('市')).unwrap_or(full)
}

/// Turns `广东/深圳市` or `广东省 / 深圳市` into `广东省/深圳市`; `None` if the province is
/// unknown or the city is unreasonable.
pub fn normalize(text: &str) -> Option<String> {
    let (province, city) = match text.split_once('/') {
        Some((p, c)) => (p.trim(), Some(c.trim())),
        None => (text.trim(), None),
    };
    let full = PROVINCES.iter().find(|p| **p == province || short_name(p) == province)?;
    match city {
        None | Some("") => Some((*full).to_owned()),
        Some(city) if city.contains('/') || city.chars().count() > 40 => None,
        Some(city) => Some(format!("{full}/{city}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_short_names() {
        assert_eq!(normalize("广东/深圳市").as_deref(), Some("广东省/深圳市"));
        assert_eq!(normalize("广西壮族自治区").as_deref(), Some("广西壮族自治区"));
        assert_eq!(normalize("广西").as_deref(), Some("广西壮族自治区"));
        assert_eq!(normalize("北京").as_deref(), Some("北京市"));
        assert_eq!(normalize("火星"), None);
        assert_eq!(normalize("广东省/深圳/南山"), None);
    }
}
