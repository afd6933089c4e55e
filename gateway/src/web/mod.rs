//! The browser pages: one HTML shell per page path, and the files under `gateway/web/`
//! (JavaScript modules, the style sheet, the message catalogues) at `/static/`.
//!
//! The pages hold no data: each is the shell, in which `web/js/app.js` loads the page's
//! module, and the module reads and changes everything through `/api/v1` with the session
//! cookie. So a page shows exactly what the API lets its user see; a refused call shows
//! the refusal, never a partial page. The files are compiled into the binary (rust-embed),
//! so the product runs with no front-end build and no files beside it.
//!
//! Text comes from the message catalogues `web/i18n/<lang>/*.json` (one file per area,
//! merged per language at `/static/i18n/<lang>.json`). Chinese is the default; the
//! `duikou_lang` cookie, set by the language switch, picks English.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use serde_json::{Map, Value};

use crate::http::AppState;

#[derive(RustEmbed)]
#[folder = "web/"]
struct Assets;

#[derive(RustEmbed)]
#[folder = "web/i18n/"]
struct Catalogues;

/// The languages there are catalogues for; the first is the default.
pub const LANGUAGES: [&str; 2] = ["zh", "en"];

/// The cookie that holds the chosen language.
pub const LANG_COOKIE: &str = "duikou_lang";

/// Where each page is, and the name of its module under `web/js/pages/`.
const PAGES: [(&str, &str); 18] = [
    ("/login", "login"),
    ("/home", "home"),
    ("/requests", "requests"),
    ("/requests/new", "request_new"),
    ("/requests/{id}", "request"),
    ("/requests/{id}/opinion", "opinion_print"),
    ("/inbox", "inbox"),
    ("/rooms/{session}", "room"),
    ("/worklist", "worklist"),
    ("/viewer/{study}", "viewer"),
    ("/teaching", "teaching"),
    ("/program", "program"),
    ("/audit", "audit"),
    ("/password", "password"),
    ("/two-factor", "two_factor"),
    ("/notices", "notices"),
    ("/manage", "manage"),
    ("/manage/{section}", "manage"),
];

/// The pages and their files.
pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/", get(|| async { Redirect::to("/home") }))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/icon.svg") }),
        )
        .route("/static/i18n/{file}", get(catalogue))
        .route("/static/{*path}", get(asset));
    for (path, module) in PAGES {
        router = router.route(
            path,
            get(move |State(state): State<AppState>, headers: HeaderMap| {
                page(module, state.demo, headers)
            }),
        );
    }
    router
}

/// The language a request asks for by its cookie, else the default.
fn language(headers: &HeaderMap) -> &'static str {
    crate::http::cookie(headers, LANG_COOKIE)
        .and_then(|value| LANGUAGES.into_iter().find(|l| *l == value))
        .unwrap_or(LANGUAGES[0])
}

/// The merged catalogue of each language.
fn catalogues() -> &'static BTreeMap<&'static str, Value> {
    static MERGED: OnceLock<BTreeMap<&'static str, Value>> = OnceLock::new();
    MERGED.get_or_init(|| {
        LANGUAGES
            .into_iter()
            .map(|lang| {
                let mut merged = Map::new();
                let prefix = format!("{lang}/");
                for name in Catalogues::iter().filter(|n| n.starts_with(&prefix)) {
                    let file = Catalogues::get(&name).expect("listed by iter");
                    // The catalogues are part of the build; `web_catalogues_agree` checks
                    // that each parses and that both languages have the same keys.
                    if let Ok(Value::Object(messages)) = serde_json::from_slice(&file.data) {
                        merged.extend(messages);
                    }
                }
                (lang, Value::Object(merged))
            })
            .collect()
    })
}

/// One message of a language's catalogue (the key itself when it is missing).
pub fn message(lang: &str, key: &str) -> String {
    message_if_any(lang, key).unwrap_or_else(|| key.to_owned())
}

/// One message of a language's catalogue, if it has the key.
pub fn message_if_any(lang: &str, key: &str) -> Option<String> {
    catalogues()
        .get(lang)
        .and_then(|c| c.get(key))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The shell of a page: the module loads the page's data and draws it.
async fn page(module: &'static str, demo: bool, headers: HeaderMap) -> Response {
    let lang = language(&headers);
    let html_lang = if lang == "zh" { "zh-CN" } else { "en" };
    let title = escape(&message(lang, "app.title"));
    let noscript = escape(&message(lang, "app.noscript"));
    let body = format!(
        r#"<!doctype html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css">
<script type="module" src="/static/js/app.js"></script>
</head>
<body data-page="{module}" data-lang="{lang}" data-demo="{demo}">
<header id="bar"></header>
<main id="app" aria-live="polite"></main>
<noscript>{noscript}</noscript>
</body>
</html>
"#
    );
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
             frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

/// A file under `web/`.
async fn asset(Path(path): Path<String>) -> Response {
    let Some(file) = Assets::get(&path) else {
        return crate::error::Error::NotFound(format!("/static/{path}")).into_response();
    };
    let mime = file.metadata.mimetype();
    let mut response = file.data.into_owned().into_response();
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    // Revalidated each time: a new version of the gateway serves new files at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `/static/i18n/<lang>.json`: a language's merged catalogue.
async fn catalogue(Path(file): Path<String>) -> Response {
    let lang = file.strip_suffix(".json").unwrap_or_default();
    match catalogues().get(lang) {
        Some(messages) => {
            let mut response = axum::Json(messages.clone()).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => crate::error::Error::NotFound(format!("/static/i18n/{file}")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every catalogue parses, and both languages have the same keys, none empty.
    #[test]
    fn web_catalogues_agree() {
        let mut keys = Vec::new();
        for lang in LANGUAGES {
            let prefix = format!("{lang}/");
            let mut all = Vec::new();
            for name in Catalogues::iter().filter(|n| n.starts_with(&prefix)) {
                let file = Catalogues::get(&name).unwrap();
                let parsed: Map<String, Value> =
                    serde_json::from_slice(&file.data).unwrap_or_else(|e| panic!("{name}: {e}"));
                for (k, v) in parsed {
                    assert!(
                        v.as_str().is_some_and(|s| !s.trim().is_empty()),
                        "{name}: {k} is not a text"
                    );
                    all.push(k);
                }
            }
            all.sort();
            keys.push((lang, all));
        }
        let (first, rest) = keys.split_first().unwrap();
        for (lang, k) in rest {
            let missing: Vec<_> = first.1.iter().filter(|x| !k.contains(x)).collect();
            let extra: Vec<_> = k.iter().filter(|x| !first.1.contains(x)).collect();
            assert!(
                missing.is_empty() && extra.is_empty(),
                "{lang} lacks {missing:?} and has extra {extra:?} against {}",
                first.0
            );
        }
        assert!(!first.1.is_empty());
    }

    /// The keys the pages' modules name literally (`t("key"` and `t(\`key\``without a
    /// placeholder), each of which must be in the catalogues.
    fn keys_named_in_modules() -> Vec<(String, String)> {
        let mut found = Vec::new();
        for name in Assets::iter().filter(|n| n.ends_with(".js")) {
            let file = Assets::get(&name).unwrap();
            // Comments may show the call with a made-up key.
            let text: String = std::str::from_utf8(&file.data)
                .unwrap()
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    !(l.starts_with("//") || l.starts_with('*') || l.starts_with("/*"))
                })
                .collect::<Vec<_>>()
                .join("\n");
            for quote in ['"', '`'] {
                let opening = format!("t({quote}");
                let mut rest = text.as_str();
                while let Some(at) = rest.find(&opening) {
                    // Only the function `t` itself, not a name ending in t (`split(`…).
                    let before = rest[..at].chars().next_back();
                    rest = &rest[at + opening.len()..];
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.') {
                        continue;
                    }
                    let Some(end) = rest.find(quote) else { break };
                    let key = &rest[..end];
                    if !key.contains("${") {
                        found.push((name.to_string(), key.to_owned()));
                    }
                }
            }
        }
        found
    }

    #[test]
    fn every_key_the_modules_name_is_in_both_catalogues() {
        let named = keys_named_in_modules();
        assert!(
            named.len() > 100,
            "the scan finds the keys: {}",
            named.len()
        );
        for lang in LANGUAGES {
            let catalogue = &catalogues()[lang];
            let missing: Vec<_> = named
                .iter()
                .filter(|(_, key)| catalogue.get(key).is_none())
                .collect();
            assert!(missing.is_empty(), "{lang} lacks {missing:?}");
        }
    }

    #[test]
    fn every_page_has_its_module() {
        for (path, module) in PAGES {
            assert!(
                Assets::get(&format!("js/pages/{module}.js")).is_some(),
                "{path} names js/pages/{module}.js, which is missing"
            );
        }
    }

    #[test]
    fn every_management_section_has_its_module() {
        let manage = Assets::get("js/pages/manage.js").expect("the management page");
        let text = std::str::from_utf8(&manage.data).expect("UTF-8");
        let list = text
            .split("export const SECTIONS = [")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .expect("manage.js lists its SECTIONS");
        let sections: Vec<&str> = list
            .split(',')
            .map(|s| s.trim().trim_matches('"'))
            .filter(|s| !s.is_empty())
            .collect();
        assert!(!sections.is_empty(), "manage.js lists no section");
        for name in sections {
            assert!(
                Assets::get(&format!("js/pages/manage/{name}.js")).is_some(),
                "manage.js lists {name}, whose module js/pages/manage/{name}.js is missing"
            );
        }
    }

    #[test]
    fn the_language_comes_from_the_cookie_and_defaults_to_chinese() {
        let mut h = HeaderMap::new();
        assert_eq!(language(&h), "zh");
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; duikou_lang=en"),
        );
        assert_eq!(language(&h), "en");
        h.insert(header::COOKIE, HeaderValue::from_static("duikou_lang=fr"));
        assert_eq!(language(&h), "zh");
    }
}
