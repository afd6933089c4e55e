//! Cross-site request refusal: a request that changes state and is authenticated by the
//! session cookie is carried out only when the browser says it comes from the gateway's
//! own pages. A page of another site can make a browser send the cookie with a form or
//! a bodyless `fetch` (no CORS preflight for those), and `SameSite=Lax` does not stop a
//! site on the same registrable domain.
//!
//! The browser's word is `Sec-Fetch-Site` (Fetch Metadata; Chromium, Firefox and Safari
//! send it): `same-origin` passes, anything else but `none` is refused. Without it, the
//! `Origin` header must name this gateway: its host and port are those of `Host`. A
//! cookie request that changes state and carries neither is refused too (browsers that
//! send the cookie send one of them on a `POST`). Bearer-token calls carry no ambient
//! credential and are not affected; neither are `GET`, `HEAD` and `OPTIONS`. A login
//! that a browser says comes from another site is refused, so that no site can log a
//! browser in to an account of its choosing; API clients' logins say nothing and pass.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::auth::SESSION_COOKIE;
use crate::error::Error;

/// Refuses a cross-site request that would act with the session cookie (see the module).
pub(super) async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let by_cookie = !bearer(headers) && super::cookie(headers, SESSION_COOKIE).is_some();
    let login = request.uri().path() == "/api/v1/auth/login";
    let refused = changes_state
        && match provenance(headers) {
            Provenance::Own => false,
            Provenance::Foreign => by_cookie || login,
            Provenance::Unknown => by_cookie,
        };
    if refused {
        tracing::info!("a cross-site request was refused");
        return Error::CrossSite.into_response();
    }
    next.run(request).await
}

fn bearer(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
}

/// Where the browser says a request comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provenance {
    /// This gateway's own pages (or the user, typing an address).
    Own,
    /// A page of another origin.
    Foreign,
    /// It does not say: not a browser, or one too old to say.
    Unknown,
}

fn provenance(headers: &HeaderMap) -> Provenance {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site") {
        return if site == "same-origin" || site == "none" {
            Provenance::Own
        } else {
            Provenance::Foreign
        };
    }
    let Some(origin) = text(header::ORIGIN.as_str()) else {
        return Provenance::Unknown;
    };
    let host = text(header::HOST.as_str()).unwrap_or_default();
    // `scheme://host[:port]`, compared with `Host` (the default port is in neither).
    let own = origin.split_once("://").is_some_and(|(scheme, authority)| {
        matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
    });
    if own {
        Provenance::Own
    } else {
        Provenance::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_browser_s_word_decides_and_origin_stands_in_for_it() {
        use Provenance::*;
        let of = |pairs| provenance(&headers(pairs));
        assert_eq!(of(&[("sec-fetch-site", "same-origin")]), Own);
        assert_eq!(of(&[("sec-fetch-site", "none")]), Own);
        assert_eq!(of(&[("sec-fetch-site", "cross-site")]), Foreign);
        assert_eq!(of(&[("sec-fetch-site", "same-site")]), Foreign);
        // Fetch metadata wins over an Origin that looks right.
        let pairs = [
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://gw:8080"),
            ("host", "gw:8080"),
        ];
        assert_eq!(of(&pairs), Foreign);
        assert_eq!(
            of(&[("origin", "http://gw:8080"), ("host", "gw:8080")]),
            Own
        );
        assert_eq!(
            of(&[("origin", "https://GW.example"), ("host", "gw.example")]),
            Own
        );
        assert_eq!(
            of(&[("origin", "http://evil.example"), ("host", "gw:8080")]),
            Foreign
        );
        assert_eq!(
            of(&[("origin", "http://gw:8081"), ("host", "gw:8080")]),
            Foreign
        );
        assert_eq!(of(&[("origin", "null"), ("host", "gw:8080")]), Foreign);
        assert_eq!(of(&[("origin", "http://gw:8080")]), Foreign);
        assert_eq!(of(&[("host", "gw:8080")]), Unknown);
    }
}
