//! The HTTP API under `/api/v1` (JSON; the OpenAPI document at `/api/v1/openapi.json`),
//! plus `/healthz`, `/readyz` and `/metrics`.
//!
//! Each resource has its own file and `router()`; routes are declared with their OpenAPI
//! description so the document cannot drift from the code. Errors are RFC 9457 problems
//! ([`crate::error::Error`]); their causes are logged here, inside the request's span.
//!
//! Around every route: cross-site requests acting with the session cookie are refused
//! (`same_origin`), request bodies that fall silent time out, and the JSON extractor
//! bounds every string and refuses control and text-direction characters (`extract`).
//! The server itself closes connections whose request head takes too long
//! (`crate::startup`).

mod audit;
mod audited;
mod auth;
mod availability;
mod clinicians;
mod dicomweb;
pub mod disposition;
mod extract;
mod health;
mod imaging;
mod institutions;
mod notifications;
mod pairings;
mod patients;
mod reports;
mod requests;
mod rounds;
mod same_origin;
mod sessions;
mod setup;
mod teaching;
mod teams;
mod users;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use auth::Caller;
pub use extract::{ApiJson, ApiQuery, BodyLimit, Id, cookie};
pub use health::Metrics;

use crate::config::Config;
use crate::error::{Error, LoggedCause, Problem};
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The configuration it was started with.
    pub config: Arc<Config>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Whether the listener speaks HTTPS (session cookies are then `Secure`).
    pub tls: bool,
    /// An argon2id hash to verify against for unknown usernames, so that a failed login
    /// takes as long whether or not the account exists.
    pub dummy_hash: Arc<String>,
    /// The bounded password checks of logins and password changes.
    pub hasher: crate::auth::Hasher,
    /// The video rooms of this process.
    pub signaling: duikou_signaling::server::Signaling,
    /// The imaging relay's spool and index, for STOW-RS.
    pub relay: crate::imaging::Relay,
    /// Whether `duikou demo` built this installation: the pages say so.
    pub demo: bool,
    /// The font of the PDFs, loaded on first use, and the bound on PDFs made at once.
    pub documents: Arc<crate::documents::Documents>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "duikou", description = "Paired-support telemedicine gateway: registry, pairings and users."),
    servers((url = "/api/v1")),
    components(schemas(Problem, crate::error::FieldError)),
    modifiers(&Security),
    security(("bearer" = []), ("cookie" = []))
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
    }
}

/// The document as served: refusals are documented as `application/problem+json`, the
/// media type they are sent with (utoipa names every body `application/json`).
fn served(openapi: &utoipa::openapi::OpenApi) -> serde_json::Value {
    use serde_json::Value;
    let mut doc = serde_json::to_value(openapi).unwrap_or_default();
    let responses = doc
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
            continue;
        };
        let problem = content
            .get("application/json")
            .and_then(|c| c.pointer("/schema/$ref"))
            .and_then(Value::as_str)
            == Some("#/components/schemas/Problem");
        if problem && let Some(body) = content.remove("application/json") {
            content.insert("application/problem+json".into(), body);
        }
    }
    doc
}

/// The API's routes with their OpenAPI description.
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(auth::router())
        .merge(audit::router())
        .merge(patients::router())
        .merge(institutions::router())
        .merge(clinicians::router())
        .merge(teams::router())
        .merge(pairings::router())
        .merge(users::router())
        .merge(requests::router())
        .merge(availability::router())
        .merge(teaching::router())
        .merge(reports::router())
        .merge(rounds::router())
        .merge(sessions::router())
        .merge(imaging::router())
        .merge(setup::router())
        .merge(notifications::router())
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let limit = state.config.http.max_body_bytes;
    let (api, openapi) = api().split_for_parts();
    let openapi = Arc::new(served(&openapi));
    let api = api.merge(sessions::socket_router()).route(
        "/openapi.json",
        get(move || async move { Json(openapi.as_ref().clone()) }),
    );
    Router::new()
        .nest("/api/v1", api)
        .merge(health::router())
        .merge(dicomweb::router(&state.config.http.cors_origins))
        .merge(crate::web::router())
        .fallback(not_found)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            audited::context,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), health::track))
        .layer(middleware::from_fn(same_origin::refuse_cross_site))
        .layer(middleware::from_fn(log_errors))
        .layer(middleware::from_fn(speak_callers_language))
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(state.config.http.body_timeout_seconds),
        ))
        .layer(Extension(BodyLimit(limit)))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // The route template, never the concrete URI or query, which may carry names.
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or("unmatched", |p| p.as_str());
                tracing::info_span!("request", method = %request.method(), route)
            }),
        )
        .with_state(state)
}

async fn not_found(request: Request) -> Error {
    Error::NotFound(format!("{} {}", request.method(), request.uri().path()))
}

/// Logs the cause chain of every internal error, and each refusal at debug level.
async fn log_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
        tracing::error!(status = response.status().as_u16(), cause = %cause, "request failed");
    } else if response.status().is_client_error() {
        tracing::debug!(status = response.status().as_u16(), "request refused");
    }
    response.into_response()
}

/// Says every problem in the caller's language (`duikou_lang` cookie, else
/// `Accept-Language`; English when neither names one there are words for).
async fn speak_callers_language(request: Request, next: Next) -> Response {
    let lang = crate::text::language(request.headers());
    let response = next.run(request).await;
    crate::error::say_in_callers_language(lang, response)
}

/// Validates paging: `limit` 1 to 1000 (default 100), `offset` not negative.
fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), Error> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::field("limit", "limit lies between 1 and 1000"));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(Error::field("offset", "offset is not negative"));
    }
    Ok((limit, offset))
}
