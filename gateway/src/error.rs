//! The one error type at duikou's edges. Each variant has a status and a stable problem
//! `type` (RFC 9457); internals never reach the body, and patient data never reaches
//! either the body or the log.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::rules::{About, Gap, Rule};
use crate::store::StoreError;
use crate::text::Text;

/// Where problem types live; each kind of error appends its own name.
pub const PROBLEM_BASE: &str = "https://duikou.invalid/problems/";

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field has a bad value, or refers to something that does not exist.
    #[error("{field}: {detail}")]
    InvalidField {
        /// The field, as a path such as `supporter.id` or the query parameter's name.
        field: String,
        /// What is wrong with it.
        detail: Text,
    },
    /// The body is not well-formed JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// The body is not of the media type the endpoint takes (named here).
    #[error("expected Content-Type: {0}")]
    UnsupportedMediaType(&'static str),
    /// The body is larger than `http.max_body_bytes`.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// No valid session.
    #[error("log in first: this endpoint needs a session")]
    Unauthenticated,
    /// Wrong username or password.
    #[error("wrong username or password")]
    BadCredentials,
    /// Too many failed logins; try again later.
    #[error("too many failed logins for this account; try again in {0} s")]
    TooManyAttempts(i64),
    /// A request acting with the session cookie came from a page of another site.
    #[error("this request came from a page of another site; open duikou's own page and try again")]
    CrossSite,
    /// Every password check is busy; try again in this many seconds.
    #[error("the server is checking too many passwords at once; try again in {0} s")]
    Busy(i64),
    /// The process holds as many streams of its kind as it allows; try again shortly.
    #[error("the server follows too many pages at once; try again in a few seconds")]
    TooManyStreams,
    /// Something the server needs for this answer is not installed (named in the detail).
    #[error("{0}")]
    Unavailable(String),
    /// The caller still has a one-time password, which must be replaced first.
    #[error("change your one-time password first: POST /api/v1/me/password")]
    PasswordChangeRequired,
    /// The caller's role signs in with a second factor, and they have not enrolled one.
    #[error("enrol a second factor first: POST /api/v1/me/two-factor")]
    TwoFactorRequired,
    /// The caller's role or institution does not allow this.
    #[error("{0}")]
    Forbidden(Text),
    /// No such resource.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with the current state.
    #[error("{0}")]
    Conflict(Text),
    /// A rule of the program refuses the request; the rule's name is the problem type.
    #[error("{detail}")]
    Refused {
        /// The rule.
        rule: Rule,
        /// The field to blame, when there is one.
        field: Option<String>,
        /// What the rule says and what to do.
        detail: Text,
    },
    /// Several fields fail their rules at once; the problem's type is the first one's rule
    /// and `errors` lists them all. Never empty.
    #[error("{}", crate::rules::gaps_in_english(.0))]
    Gaps(Vec<Gap>),
    /// Anything else; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// An RFC 9457 problem body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of error.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind.
    pub title: &'static str,
    /// HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// The offending field, when one is to blame (the first of `errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Every field to blame, each with what is wrong with it, so that a form marks them
    /// all at once; left out when no field is to blame.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field a problem blames.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, as a path such as `case_summary.history` or `content.patient`.
    pub field: String,
    /// What is wrong with it, in the caller's language, without the field's name.
    pub detail: String,
}

/// What a problem says, kept with the response so that [`say_in_callers_language`]
/// can say it again in the caller's language: the detail and each field's detail.
#[derive(Debug, Clone)]
struct Sayings {
    problem: Problem,
    detail: Text,
    /// The problem type's name, whose sentence (`rule.<name>`, else `problem.<name>`) is
    /// said when a text has no words in the language.
    fallback: String,
    errors: Vec<Text>,
}

/// Carried from [`Error::into_response`] to the logging middleware, which logs it inside
/// the request's span.
#[derive(Debug, Clone)]
pub struct LoggedCause(pub Arc<String>);

impl Error {
    /// A bad value in `field`.
    pub fn field(field: impl Into<String>, detail: impl Into<Text>) -> Self {
        Self::InvalidField {
            field: field.into(),
            detail: detail.into(),
        }
    }

    /// Refusal because of the caller's role or institution.
    pub fn forbidden(detail: impl Into<Text>) -> Self {
        Self::Forbidden(detail.into())
    }

    /// Refusal under a program rule.
    pub fn refused(rule: Rule, field: Option<&str>, detail: impl Into<Text>) -> Self {
        Self::Refused {
            rule,
            field: field.map(str::to_owned),
            detail: detail.into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use Error::*;
        match self {
            Gaps(gaps) => refusal(gaps.first().map_or(Rule::IncompleteRequest, |g| g.rule)),
            Refused { rule, .. } => refusal(*rule),
            InvalidField { .. } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-field",
                "A field is invalid",
            ),
            MalformedJson(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-json",
                "The body is not valid JSON",
            ),
            UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            BadCredentials => (
                StatusCode::UNAUTHORIZED,
                "bad-credentials",
                "Wrong username or password",
            ),
            TooManyAttempts(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-attempts",
                "Too many failed logins",
            ),
            CrossSite => (
                StatusCode::FORBIDDEN,
                "cross-site-request",
                "Cross-site request refused",
            ),
            Busy(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many password checks at once",
            ),
            TooManyStreams => (
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many streams at once",
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Not available on this server",
            ),
            PasswordChangeRequired => (
                StatusCode::FORBIDDEN,
                "password-change-required",
                "The one-time password must be changed first",
            ),
            TwoFactorRequired => (
                StatusCode::FORBIDDEN,
                "two-factor-required",
                "A second factor must be enrolled first",
            ),
            Forbidden(_) => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "Not allowed for this role or institution",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Conflict(_) => (
                StatusCode::CONFLICT,
                "conflict",
                "Conflicts with the current state",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// The status, type name and title of a refusal under `rule`.
fn refusal(rule: Rule) -> (StatusCode, &'static str, &'static str) {
    let status = match rule.about() {
        About::Input => StatusCode::UNPROCESSABLE_ENTITY,
        About::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        About::State => StatusCode::CONFLICT,
        About::Caller => StatusCode::FORBIDDEN,
    };
    (status, rule.name(), "Refused by a program rule")
}

impl From<crate::auth::Busy> for Error {
    fn from(_: crate::auth::Busy) -> Self {
        Self::Busy(1)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => Self::Conflict(crate::text!(
                "problem.exists",
                "{what} exists already",
                what = what
            )),
            StoreError::Stale(what) => Self::Conflict(Text::new("problem.stale", what)),
            StoreError::Invalid { field, message } => Self::field(field, message),
            e @ (StoreError::Corrupt(_) | StoreError::Abandoned(_) | StoreError::Db(_)) => {
                Self::Internal(e.into())
            }
        }
    }
}

/// The one mapping of what services answer to what HTTP clients are told.
impl From<crate::rules::Error> for Error {
    fn from(e: crate::rules::Error) -> Self {
        use crate::rules::Error as E;
        match e {
            E::Invalid { field, detail } => Self::InvalidField { field, detail },
            E::Forbidden(detail) => Self::Forbidden(detail),
            E::NotFound(what) => Self::NotFound(what),
            E::Conflict(detail) => Self::Conflict(detail),
            E::Refused {
                rule,
                field,
                detail,
            } => Self::Refused {
                rule,
                field,
                detail,
            },
            E::Gaps(gaps) => Self::Gaps(gaps),
            E::Busy(busy) => busy.into(),
            E::Store(e) => e.into(),
            E::Internal(e) => Self::Internal(e),
        }
    }
}

impl Error {
    /// The detail as a text that can be said in other languages: the service's own text,
    /// or for the edge's own variants, a sentence of the catalogue.
    fn saying(&self) -> Text {
        use Error::*;
        match self {
            InvalidField { detail, .. }
            | Refused { detail, .. }
            | Forbidden(detail)
            | Conflict(detail) => detail.clone(),
            // The form marks each field; the detail says how many there are.
            Gaps(gaps) => Text::new("problem.gaps", self.to_string()).arg("n", gaps.len()),
            MalformedJson(_) => Text::new("problem.malformed-json", self.to_string()),
            UnsupportedMediaType(media) => crate::text!(
                "problem.unsupported-media-type",
                "expected Content-Type: {media}",
                media = media
            ),
            PayloadTooLarge(bytes) => crate::text!(
                "problem.payload-too-large",
                "the request body is larger than {bytes} bytes",
                bytes = bytes
            ),
            TooManyAttempts(seconds) | Busy(seconds) => {
                let key = if matches!(self, TooManyAttempts(_)) {
                    "problem.too-many-attempts"
                } else {
                    "problem.busy"
                };
                Text::new(key, self.to_string()).arg("seconds", seconds)
            }
            Unauthenticated => Text::new("problem.unauthenticated", self.to_string()),
            BadCredentials => Text::new("problem.bad-credentials", self.to_string()),
            CrossSite => Text::new("problem.cross-site-request", self.to_string()),
            TooManyStreams => Text::new("problem.too-many-streams", self.to_string()),
            PasswordChangeRequired => {
                Text::new("problem.password-change-required", self.to_string())
            }
            TwoFactorRequired => Text::new("problem.two-factor-required", self.to_string()),
            NotFound(_) => Text::new("problem.not-found", self.to_string()),
            Unavailable(_) => Text::new("problem.unavailable", self.to_string()),
            Internal(_) => Text::new("problem.internal", "the server failed; the error is logged"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, name, title) = self.parts();
        let saying = self.saying();
        let detail = saying_in_english(&self, &saying);
        let blamed: Vec<(String, Text)> = match &self {
            Self::InvalidField { field, detail } => vec![(field.clone(), detail.clone())],
            Self::Refused {
                field: Some(field),
                detail,
                ..
            } => vec![(field.clone(), detail.clone())],
            Self::Gaps(gaps) => gaps
                .iter()
                .map(|g| (g.field.clone(), g.detail.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let field = match &self {
            Self::PayloadTooLarge(_) | Self::MalformedJson(_) | Self::UnsupportedMediaType(_) => {
                Some("body".into())
            }
            _ => blamed.first().map(|(field, _)| field.clone()),
        };
        let body = Problem {
            kind: format!("{PROBLEM_BASE}{name}"),
            title,
            status: status.as_u16(),
            detail,
            field,
            errors: blamed
                .iter()
                .map(|(field, text)| FieldError {
                    field: field.clone(),
                    detail: text.english().to_owned(),
                })
                .collect(),
        };
        let sayings = Sayings {
            problem: body.clone(),
            detail: saying,
            fallback: name.to_owned(),
            errors: blamed.into_iter().map(|(_, text)| text).collect(),
        };
        let mut response = (status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response.extensions_mut().insert(Arc::new(sayings));
        if let Self::TooManyStreams = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(5));
        }
        if let Self::TooManyAttempts(seconds) | Self::Busy(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if let Self::Internal(cause) = &self {
            response
                .extensions_mut()
                .insert(LoggedCause(Arc::new(format!("{cause:#}"))));
        }
        response
    }
}

/// The English detail, as clients have always read it: with the field's name first for
/// an invalid field.
fn saying_in_english(error: &Error, saying: &Text) -> String {
    match error {
        Error::Internal(_) => saying.english().to_owned(),
        other => other.to_string(),
    }
}

/// Says a problem again in the language the caller asked for ([`crate::text::language`]):
/// the detail and each field's detail. A text with no words in that language is said by
/// its problem type's sentence (`rule.<type>` of the catalogue), never in English.
pub fn say_in_callers_language(lang: &str, response: Response) -> Response {
    if lang == "en" {
        return response;
    }
    let Some(sayings) = response.extensions().get::<Arc<Sayings>>().cloned() else {
        return response;
    };
    let fallback = || {
        crate::web::message_if_any(lang, &format!("rule.{}", sayings.fallback))
            .or_else(|| crate::web::message_if_any(lang, &format!("problem.{}", sayings.fallback)))
            .or_else(|| crate::web::message_if_any(lang, "problem.generic"))
            .unwrap_or_default()
    };
    let mut problem = sayings.problem.clone();
    problem.detail = sayings.detail.said_in(lang).unwrap_or_else(fallback);
    for (error, text) in problem.errors.iter_mut().zip(&sayings.errors) {
        error.detail = text.said_in(lang).unwrap_or_else(fallback);
    }
    let Ok(body) = serde_json::to_vec(&problem) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn every_gap_is_listed_and_said_in_chinese_when_asked() {
        let gaps = || {
            Error::Gaps(vec![
                Gap {
                    rule: Rule::IncompleteRequest,
                    field: "reason".into(),
                    detail: Text::new(
                        "problem.request.reason",
                        "the reason for the request is missing",
                    ),
                },
                Gap {
                    rule: Rule::MissingConsent,
                    field: "consent".into(),
                    detail: "an English sentence without words elsewhere".into(),
                },
            ])
        };
        let english = body(say_in_callers_language("en", gaps().into_response())).await;
        assert_eq!(english["type"], format!("{PROBLEM_BASE}incomplete-request"));
        assert_eq!(english["field"], "reason");
        assert_eq!(
            english["errors"][1]["detail"],
            "an English sentence without words elsewhere"
        );
        let chinese = body(say_in_callers_language("zh", gaps().into_response())).await;
        assert_eq!(chinese["errors"][0]["detail"], "请填写申请原因。");
        // Without words of its own, a field's sentence is its problem type's.
        assert_eq!(
            chinese["errors"][1]["detail"],
            crate::web::message("zh", "rule.incomplete-request")
        );
        assert!(
            chinese["detail"].as_str().unwrap().contains('2'),
            "{chinese}"
        );
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let r = Error::Internal(anyhow::anyhow!("password=hunter2")).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            r.extensions()
                .get::<LoggedCause>()
                .unwrap()
                .0
                .contains("hunter2")
        );
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }
}
