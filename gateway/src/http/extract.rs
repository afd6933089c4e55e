//! Extractors that turn every malformed input into a problem naming the field: a JSON
//! body, a query string, a path id; and the reading of a cookie.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;

use crate::error::Error;

/// The value of the cookie `name` in a request's `Cookie` headers (RFC 6265 §5.4), as
/// axum-extra's cookie jar reads them.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    axum_extra::extract::cookie::CookieJar::from_headers(headers)
        .get(name)
        .map(|c| c.value().to_owned())
}

/// How much of a refused request body is read and dropped, so that a client still sending
/// gets the answer instead of a reset connection. Beyond this the connection may reset.
pub const DRAIN_AT_MOST: usize = 16 * 1024 * 1024;

/// Reads and drops up to [`DRAIN_AT_MOST`] of a request body that is refused before it
/// is read (a reset would lose the answer to a client still sending).
pub async fn drain(mut body: Body) {
    let mut read = 0;
    while read <= DRAIN_AT_MOST {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, Bytes::len),
            _ => return,
        }
    }
}

/// Reads a body of at most `limit` bytes; a larger one is drained (see [`drain`]) and
/// refused with 413.
pub async fn read_limited(mut body: Body, limit: usize) -> Result<Bytes, Error> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::field("body", format!("the body broke off: {e}")))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        if bytes.len() + data.len() > limit {
            drain(body).await;
            return Err(Error::PayloadTooLarge(limit));
        }
        bytes.extend_from_slice(data);
    }
    Ok(Bytes::from(bytes))
}

/// The longest text of a free-text field ([`LONG_TEXT_FIELDS`]), in characters.
pub const LONG_TEXT_CHARS: usize = 20_000;
/// The longest text of any other string field (names, codes, titles, addresses), in
/// characters.
pub const SHORT_TEXT_CHARS: usize = 2_000;
/// The fields of free text, wherever they are in a body: a case summary's parts, an
/// opinion's body, notes, reasons, purposes.
pub const LONG_TEXT_FIELDS: [&str; 10] = [
    "chief_complaint",
    "history",
    "findings",
    "question",
    "body",
    "note",
    "reason",
    "reason_text",
    "decline_text",
    "purpose",
];

/// Characters no text field takes: controls other than tab and line breaks, and the
/// bidirectional controls (embeddings, overrides, isolates and marks) that make a text
/// read otherwise than it is stored (CVE-2021-42574).
fn unwanted(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        || matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks every string in `value` (at `path`, as `a.b[0].c`): its length against its
/// field's limit, and no [`unwanted`] character; else a problem naming the field.
fn check_texts(value: &serde_json::Value, path: &mut String) -> Result<(), Error> {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            let name = path.rsplit('.').next().unwrap_or_default();
            let name = name.split('[').next().unwrap_or_default();
            let limit = if LONG_TEXT_FIELDS.contains(&name) {
                LONG_TEXT_CHARS
            } else {
                SHORT_TEXT_CHARS
            };
            let field = || {
                if path.is_empty() {
                    "body".to_owned()
                } else {
                    path.clone()
                }
            };
            if text.len() > limit && text.chars().count() > limit {
                return Err(Error::field(
                    field(),
                    crate::text!(
                        "problem.json.too_long",
                        "at most {limit} characters",
                        limit = limit
                    ),
                ));
            }
            if let Some(c) = text.chars().find(|&c| unwanted(c)) {
                let code = format!("U+{:04X}", c as u32);
                return Err(Error::field(
                    field(),
                    crate::text!(
                        "problem.json.control",
                        "contains {code}, a control or text-direction character",
                        code = code
                    ),
                ));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                check_texts(item, path)?;
                path.truncate(len);
            }
        }
        Value::Object(fields) => {
            for (key, item) in fields {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                check_texts(item, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

/// A JSON body, deserialised with the path of the offending field in every error.
pub struct ApiJson<T>(pub T);

/// Which field a serde error is about: the unknown field's own name when serde reports
/// one, otherwise the path at which deserialisation stopped.
fn blame(path: &serde_path_to_error::Path, message: &str) -> String {
    let path = path.to_string();
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match named {
        // serde_path_to_error already records an unknown field's key; a missing field is
        // reported at its parent.
        Some(name) if path == "." => name.to_owned(),
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path,
        Some(name) => format!("{path}.{name}"),
        None if path == "." => "body".to_owned(),
        None => path,
    }
}

/// What serde said of a field, with the catalogue's sentence for its kind: a field the
/// endpoint does not take, one it needs, or a value of the wrong form.
fn serde_text(message: String) -> crate::text::Text {
    let key = if message.starts_with("unknown field") {
        "problem.json.unknown_field"
    } else if message.starts_with("missing field") {
        "problem.json.missing_field"
    } else if message.starts_with("unknown variant") {
        "problem.json.unknown_variant"
    } else {
        "problem.json.bad_value"
    };
    crate::text::Text::new(key, message)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Error> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<mime::Mime>().ok())
            .is_some_and(|m| m.essence_str() == mime::APPLICATION_JSON.essence_str());
        if !is_json {
            return Err(Error::UnsupportedMediaType("application/json"));
        }
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map_or(usize::MAX, |l| l.0);
        let bytes = read_limited(req.into_body(), limit).await?;
        // serde_json refuses nesting deeper than 128 levels, and trailing characters.
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| Error::MalformedJson(e.to_string()))?;
        check_texts(&json, &mut String::new())?;
        let value = serde_path_to_error::deserialize(&json).map_err(|e| {
            let message = e.inner().to_string();
            Error::field(blame(e.path(), &message), serde_text(message))
        })?;
        Ok(Self(value))
    }
}

/// An optional JSON body: none when the request has no `Content-Type` (a bare
/// `POST /requests/7/start`), otherwise parsed as [`ApiJson`].
impl<S: Send + Sync, T: DeserializeOwned> axum::extract::OptionalFromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, Error> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            <Self as FromRequest<S>>::from_request(req, state)
                .await
                .map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The configured body limit, put into request extensions so that a too-large body can
/// be reported with the limit.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A query string, deserialised with the name of the offending parameter in every error.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Error> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de).map(Self).map_err(|e| {
            let message = e.inner().to_string();
            Error::field(blame(e.path(), &message), serde_text(message))
        })
    }
}

/// A numeric id in the path; anything else is a 404 naming the parameter.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| Error::field("id", e.body_text()))?;
        raw.parse::<i64>()
            .map(Self)
            .map_err(|_| Error::NotFound(format!("resource {raw:?}")))
    }
}

/// Two numeric ids in the path (a resource and one of its parts); anything else is a 404
/// naming what was given.
pub struct Ids(pub i64, pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        let axum::extract::Path((a, b)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| Error::field("id", e.body_text()))?;
        match (a.parse::<i64>(), b.parse::<i64>()) {
            (Ok(a), Ok(b)) => Ok(Self(a, b)),
            _ => Err(Error::NotFound(format!("resource {a:?}/{b:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(json: serde_json::Value) -> Result<(), String> {
        check_texts(&json, &mut String::new()).map_err(|e| match e {
            Error::InvalidField { field, .. } => field,
            other => other.to_string(),
        })
    }

    #[test]
    fn the_session_cookie_is_found_among_others_in_any_cookie_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(
            header::COOKIE,
            "duikou_lang=en; theme=dark".parse().unwrap(),
        );
        headers.append(
            header::COOKIE,
            "duikou_session=abc=; other=1".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, "duikou_session").as_deref(), Some("abc="));
        assert_eq!(cookie(&headers, "duikou_lang").as_deref(), Some("en"));
        assert_eq!(cookie(&headers, "session"), None);
    }

    #[tokio::test]
    async fn a_json_body_needs_a_json_media_type_with_any_parameters() {
        for (content_type, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/json;charset=\"utf-8\"", true),
            ("application/jsonx", false),
            ("text/json", false),
            ("application", false),
        ] {
            let request = Request::builder()
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from("{}"))
                .unwrap();
            let read = ApiJson::<serde_json::Value>::from_request(request, &()).await;
            assert_eq!(
                !matches!(read, Err(Error::UnsupportedMediaType(_))),
                json,
                "{content_type}"
            );
        }
    }

    #[test]
    fn texts_are_bounded_and_carry_no_controls_or_direction_overrides() {
        let long = "病".repeat(SHORT_TEXT_CHARS + 1);
        assert_eq!(check(serde_json::json!({"name": long})), Err("name".into()));
        assert_eq!(
            check(serde_json::json!({"content": {"case_summary": {"history": long}}})),
            Ok(())
        );
        let longer = "病".repeat(LONG_TEXT_CHARS + 1);
        assert_eq!(
            check(serde_json::json!({"content": {"case_summary": {"history": longer}}})),
            Err("content.case_summary.history".into())
        );
        assert_eq!(
            check(serde_json::json!({"patients": [{"bed": "3"}, {"bed": "4\u{202E}"}]})),
            Err("patients[1].bed".into())
        );
        assert_eq!(
            check(serde_json::json!({"note": "a\u{0}b"})),
            Err("note".into())
        );
        assert_eq!(check(serde_json::json!({"note": "一行\n二行\t完"})), Ok(()));
    }
}
