//! An amount of money in Chinese capital numerals (人民币大写), as cheques, invoices and
//! contracts write it: `12345.67` is 壹万贰仟叁佰肆拾伍元陆角柒分. It works on the exact
//! amount in cents, never on a float.

const DIGITS: [char; 10] = ['零', '壹', '贰', '叁', '肆', '伍', '陆', '柒', '捌', '玖'];
/// The units inside a group of four digits, from the ones up.
const PLACES: [&str; 4] = ["", "拾", "佰", "仟"];
/// The unit of each group of four digits, from the ones up (an `i64` of cents has at most 17
/// digits, so four groups of yuan are enough).
const GROUPS: [&str; 5] = ["", "万", "亿", "万亿", "亿亿"];

/// The amount of `cents` in capital numerals; negative amounts start with 负.
pub fn rmb_upper(cents: i64) -> String {
    let sign = if cents < 0 { "负" } else { "" };
    let cents = cents.unsigned_abs();
    let (yuan, jiao, fen) = (cents / 100, (cents / 10 % 10) as usize, (cents % 10) as usize);
    let mut out = String::from(sign);
    if yuan > 0 {
        out.push_str(&integer(yuan));
        out.push('元');
    }
    match (jiao, fen) {
        (0, 0) if yuan == 0 => out.push_str("零元整"),
        (0, 0) => out.push('整'),
        _ => {
            // A zero between the yuan and what follows is written once: 壹佰万元零壹角,
            // 壹佰元零伍分.
            if yuan > 0 && (yuan % 10 == 0 || jiao == 0) {
                out.push('零');
            }
            if jiao > 0 {
                out.push(DIGITS[jiao]);
                out.push('角');
            }
            if fen > 0 {
                out.push(DIGITS[fen]);
                out.push('分');
            }
        }
    }
    out
}

/// A positive whole number: groups of four digits with their unit; one 零 stands for any run of
/// zeros between two digits that are not zero (壹万零壹拾, 壹亿零壹).
fn integer(mut n: u64) -> String {
    let mut groups = Vec::new();
    while n > 0 {
        groups.push((n % 10_000) as usize);
        n /= 10_000;
    }
    let mut out = String::new();
    let mut zero_pending = false;
    for (index, group) in groups.iter().enumerate().rev() {
        if *group == 0 {
            zero_pending |= !out.is_empty();
            continue;
        }
        if !out.is_empty() && (zero_pending || *group < 1000) {
            out.push('零');
        }
        out.push_str(&four_digits(*group));
        out.push_str(GROUPS[index]);
        zero_pending = false;
    }
    out
}

/// One group of up to four digits, without its leading zeros.
fn four_digits(group: usize) -> String {
    let mut out = String::new();
    let mut zero_pending = false;
    for place in (0..4).rev() {
        let digit = group / 10_usize.pow(place as u32) % 10;
        if digit == 0 {
            zero_pending |= !out.is_empty();
            continue;
        }
        if zero_pending {
            out.push('零');
            zero_pending = false;
        }
        out.push(DIGITS[digit]);
        out.push_str(PLACES[place]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rmb_upper;

    #[test]
    fn the_examples_of_the_issue() {
        assert_eq!(rmb_upper(1_234_567), "壹万贰仟叁佰肆拾伍元陆角柒分");
        assert_eq!(rmb_upper(10_000), "壹佰元整");
        assert_eq!(rmb_upper(5), "伍分");
        assert_eq!(rmb_upper(100_000_010), "壹佰万元零壹角");
        assert_eq!(rmb_upper(1_001_000), "壹万零壹拾元整");
    }

    #[test]
    fn zero_and_cents_alone() {
        assert_eq!(rmb_upper(0), "零元整");
        assert_eq!(rmb_upper(50), "伍角");
        assert_eq!(rmb_upper(55), "伍角伍分");
        assert_eq!(rmb_upper(100), "壹元整");
    }

    #[test]
    fn a_zero_before_the_cents_is_written_once() {
        assert_eq!(rmb_upper(10_005), "壹佰元零伍分");
        assert_eq!(rmb_upper(168_032), "壹仟陆佰捌拾元零叁角贰分");
        assert_eq!(rmb_upper(168_002), "壹仟陆佰捌拾元零贰分");
        assert_eq!(rmb_upper(10_150), "壹佰零壹元伍角");
        assert_eq!(rmb_upper(1_101), "壹拾壹元零壹分");
    }

    #[test]
    fn zeros_inside_the_yuan() {
        assert_eq!(rmb_upper(1_000), "壹拾元整");
        assert_eq!(rmb_upper(101_000), "壹仟零壹拾元整");
        assert_eq!(rmb_upper(100_100), "壹仟零壹元整");
        assert_eq!(rmb_upper(1_000_100), "壹万零壹元整");
        assert_eq!(rmb_upper(1_100_050_000), "壹仟壹佰万零伍佰元整");
        assert_eq!(rmb_upper(10_000_000_100), "壹亿零壹元整");
        assert_eq!(rmb_upper(10_001_000_000), "壹亿零壹万元整");
        assert_eq!(rmb_upper(12_030_405_060_700), "壹仟贰佰零叁亿零肆佰零伍万零陆佰零柒元整");
    }

    #[test]
    fn large_and_negative_amounts() {
        assert_eq!(rmb_upper(-1_234_567), "负壹万贰仟叁佰肆拾伍元陆角柒分");
        assert_eq!(rmb_upper(-5), "负伍分");
        assert_eq!(rmb_upper(100_000_000_000_000), "壹万亿元整");
        // The extremes of the exact amount are still written, not a panic.
        assert!(rmb_upper(i64::MAX).starts_with("玖亿亿贰仟贰佰叁拾叁万亿"));
        assert!(rmb_upper(i64::MAX).ends_with("元零柒分"));
        assert!(rmb_upper(i64::MIN).starts_with("负玖亿亿"));
    }
}
