//! Names as printed in the program documents carry stray spaces from table layout
//! ("龙 山", "詹  俊"). Chinese names never contain spaces, so whitespace between two
//! CJK characters is dropped; elsewhere runs of whitespace collapse to one space.

/// Normalises a person's, place's or unit's name: trims it, removes whitespace (ASCII or
/// the ideographic space U+3000) between CJK characters and collapses other runs to a
/// single space.
pub fn normalize_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for c in raw.trim().chars() {
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        if pending_space {
            let prev_cjk = out.chars().next_back().is_some_and(is_cjk);
            if !(prev_cjk && is_cjk(c)) {
                out.push(' ');
            }
            pending_space = false;
        }
        out.push(c);
    }
    out
}

/// A name to search for, normalised as [`normalize_name`] does; `None` when nothing is
/// left of it.
pub fn name_query(raw: Option<String>) -> Option<String> {
    raw.map(|n| normalize_name(&n)).filter(|n| !n.is_empty())
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F | 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

#[cfg(test)]
mod tests {
    use super::normalize_name;

    #[test]
    fn spaces_inside_chinese_names_are_removed() {
        assert_eq!(normalize_name("詹  俊"), "詹俊");
        assert_eq!(normalize_name(" 龙 山 "), "龙山");
        assert_eq!(normalize_name("那\u{3000}湾"), "那湾");
    }

    #[test]
    fn latin_words_keep_one_space() {
        assert_eq!(
            normalize_name("  Wuyi   TCM  Hospital "),
            "Wuyi TCM Hospital"
        );
        assert_eq!(normalize_name("CT 室"), "CT 室");
    }
}
