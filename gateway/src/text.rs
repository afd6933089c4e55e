//! Words meant for people, said in their language.
//!
//! A service decides *what* to say before it knows who asked, so it says it as a
//! [`Text`]: the English sentence, and where it has one, a key of the web message
//! catalogues (`gateway/web/i18n/<lang>/*.json`, the pages' own) with the values of the
//! key's `{placeholders}`. The HTTP layer picks the caller's language at response time
//! ([`language`]) and asks the text for its words there ([`Text::said_in`]). A text
//! without a key has no words but English; the problem it belongs to is then said by a
//! sentence of its kind (see `crate::error`), never half in one language and half in
//! another.

use std::fmt;

use axum::http::{HeaderMap, header};

/// The languages a problem can be said in; the first is the pages' default.
pub use crate::web::LANGUAGES;

/// What a placeholder is filled with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    /// Said as it is (a number, a name, a date).
    Plain(String),
    /// A catalogue key, itself said in the language (a field's label, a service).
    Key(String),
}

/// A sentence for people: English, and a catalogue key with arguments when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    english: String,
    key: Option<&'static str>,
    args: Vec<(&'static str, Arg)>,
    /// Sentences said one after the other, in place of a key.
    parts: Vec<Text>,
}

impl Text {
    /// The message `key` of the catalogues, whose English is `english`.
    pub fn new(key: &'static str, english: impl Into<String>) -> Self {
        Self {
            english: english.into(),
            key: Some(key),
            args: Vec::new(),
            parts: Vec::new(),
        }
    }

    /// Several sentences said one after the other (`; ` between them in English, `；`
    /// in Chinese).
    pub fn joined(parts: Vec<Text>) -> Self {
        Self {
            english: parts
                .iter()
                .map(Text::english)
                .collect::<Vec<_>>()
                .join("; "),
            key: None,
            args: Vec::new(),
            parts,
        }
    }

    /// Fills `{name}` with `value`, as it is.
    #[must_use]
    pub fn arg(mut self, name: &'static str, value: impl fmt::Display) -> Self {
        self.args.push((name, Arg::Plain(value.to_string())));
        self
    }

    /// Fills `{name}` with the catalogue's message `key`, in the same language.
    #[must_use]
    pub fn arg_key(mut self, name: &'static str, key: impl Into<String>) -> Self {
        self.args.push((name, Arg::Key(key.into())));
        self
    }

    /// The English sentence.
    pub fn english(&self) -> &str {
        &self.english
    }

    /// The sentence in `lang`: English as written, else the catalogue's message with its
    /// placeholders filled; none when the text has no key or the catalogue lacks it.
    pub fn said_in(&self, lang: &str) -> Option<String> {
        if lang == "en" && !self.english.is_empty() {
            return Some(self.english.clone());
        }
        if !self.parts.is_empty() {
            let said = self
                .parts
                .iter()
                .map(|p| p.said_in(lang))
                .collect::<Option<Vec<_>>>()?;
            return Some(said.join(if lang == "zh" { "；" } else { "; " }));
        }
        let key = self.key?;
        let template = crate::web::message_if_any(lang, key)?;
        let mut out = String::with_capacity(template.len());
        let mut rest = template.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let after = &rest[open + 1..];
            match after.find('}') {
                Some(close) => {
                    let name = &after[..close];
                    match self.args.iter().find(|(n, _)| *n == name) {
                        Some((_, Arg::Plain(v))) => out.push_str(v),
                        Some((_, Arg::Key(k))) => out.push_str(&crate::web::message(lang, k)),
                        None => out.push_str(&rest[open..open + close + 2]),
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str(&rest[open..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        Some(out)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.english)
    }
}

impl From<String> for Text {
    fn from(english: String) -> Self {
        Self {
            english,
            key: None,
            args: Vec::new(),
            parts: Vec::new(),
        }
    }
}

impl From<&str> for Text {
    fn from(english: &str) -> Self {
        english.to_owned().into()
    }
}

/// A [`Text`] whose English is formatted from the same named values that fill the
/// catalogue's placeholders: `text!("problem.x", "{n} is too many", n = 3)`.
#[macro_export]
macro_rules! text {
    ($key:literal, $english:literal $(, $name:ident = $value:expr)* $(,)?) => {
        // Each value is evaluated once, for both the English and the argument.
        match ($($value,)*) {
            ($($name,)*) => $crate::text::Text::new($key, format!($english $(, $name = $name)*))
                $(.arg(stringify!($name), &$name))*,
        }
    };
}

/// The language a caller asks for: the `duikou_lang` cookie the pages' language switch
/// sets, else the first language of `Accept-Language` (RFC 9110 §12.5.4) there are
/// catalogues for, in order of preference; English for a client that says neither.
pub fn language(headers: &HeaderMap) -> &'static str {
    if let Some(chosen) = crate::http::cookie(headers, crate::web::LANG_COOKIE)
        .and_then(|value| LANGUAGES.into_iter().find(|l| *l == value))
    {
        return chosen;
    }
    let mut asked: Vec<(f32, &'static str)> = headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|range| {
            let mut parts = range.split(';');
            let tag = parts.next()?.trim().to_ascii_lowercase();
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next()?;
            let lang = LANGUAGES.into_iter().find(|l| *l == primary)?;
            (q > 0.0).then_some((q, lang))
        })
        .collect();
    // Stable: of equal weight, the one named first.
    asked.sort_by(|a, b| b.0.total_cmp(&a.0));
    asked.first().map_or("en", |(_, lang)| lang)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_cookie_wins_then_the_preferred_language_then_english() {
        assert_eq!(language(&headers(&[])), "en");
        assert_eq!(language(&headers(&[("accept-language", "zh-CN")])), "zh");
        assert_eq!(
            language(&headers(&[("accept-language", "fr, en;q=0.5, zh;q=0.8")])),
            "zh"
        );
        assert_eq!(language(&headers(&[("accept-language", "de")])), "en");
        assert_eq!(
            language(&headers(&[
                ("accept-language", "zh-CN"),
                ("cookie", "duikou_lang=en")
            ])),
            "en"
        );
    }

    /// The `problem.*` keys the code names, found in its source.
    fn keys_in_the_code() -> Vec<String> {
        fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (at, _) in text.match_indices("\"problem.") {
                        let rest = &text[at + 1..];
                        let key = &rest[..rest.find('"').unwrap()];
                        // Keys are kebab or snake case; a key made up in a comment is not.
                        if key
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || "._-".contains(c))
                            && !key.ends_with('.')
                            && key != "problem.x"
                        {
                            found.push(key.to_owned());
                        }
                    }
                }
            }
        }
        let mut found = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn every_key_the_code_names_and_every_problem_type_has_words_in_both_languages() {
        let keys = keys_in_the_code();
        assert!(keys.len() > 40, "{keys:?}");
        for lang in LANGUAGES {
            for key in &keys {
                assert!(
                    crate::web::message_if_any(lang, key).is_some(),
                    "{lang} lacks {key}"
                );
            }
            for rule in crate::rules::Rule::ALL {
                let name = rule.name();
                assert!(
                    crate::web::message_if_any(lang, &format!("rule.{name}")).is_some(),
                    "{lang} lacks rule.{name}"
                );
            }
            for name in ["forbidden", "not-found", "internal", "generic"] {
                assert!(
                    crate::web::message_if_any(lang, &format!("problem.{name}")).is_some(),
                    "{lang} lacks problem.{name}"
                );
            }
        }
    }

    #[test]
    fn a_keyed_text_fills_its_placeholders_in_each_language() {
        let t = text!(
            "problem.summary.too_short",
            "{part} has {n} characters, at least {min} are needed",
            part = "history",
            n = 3,
            min = 15
        )
        .arg_key("label", "summary.history");
        assert_eq!(
            t.said_in("en").unwrap(),
            "history has 3 characters, at least 15 are needed"
        );
        let zh = t.said_in("zh").unwrap();
        assert!(zh.contains('3') && zh.contains("15"), "{zh}");
        assert!(!zh.contains("history"), "{zh}");
        assert_eq!(Text::from("plain").said_in("zh"), None);
    }
}
