//! The audit context of every request, and the audit of changes by route.
//!
//! Around every matched route, [`context`] keeps the client's address and, once the
//! session is found, the user ([`crate::audit::Context`]) for the entries written while
//! answering. Reads and changes of patient data are audited where they are decided (the
//! booking service, the imaging access rules, the rooms); the changes of configuration
//! and of the program's registry (institutions, their webhooks, chat robots, imaging
//! destinations and DICOM nodes, clinicians and their hours, teams, pairings and their
//! targets, teaching sessions and visits, forwards) are audited here, by route, from
//! [`CHANGES`]: who, which object, and whether it was done (any 2xx) or refused (with the
//! status). Report exports are audited the same way. A route missing from the table is
//! not audited here, so a new change route is added to it; a test walks the OpenAPI
//! document and fails for any change route neither here nor audited elsewhere.

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::audit::{Context, Event};

/// A route whose changes are audited here: method, route under `/api/v1`, object kind,
/// action, and the path parameter naming the object.
pub struct Change {
    /// HTTP method.
    pub method: &'static str,
    /// The route, as declared.
    pub route: &'static str,
    /// The audited object kind.
    pub kind: &'static str,
    /// The audited action.
    pub action: &'static str,
    /// The path parameter that is the object's id; `None` for a creation, whose id is
    /// taken from the answer.
    pub id: Option<&'static str>,
}

const fn change(
    method: &'static str,
    route: &'static str,
    kind: &'static str,
    action: &'static str,
    id: Option<&'static str>,
) -> Change {
    Change {
        method,
        route,
        kind,
        action,
        id,
    }
}

/// Every route audited here.
pub const CHANGES: &[Change] = &[
    change("POST", "/institutions", "institution", "create", None),
    change(
        "PATCH",
        "/institutions/{id}",
        "institution",
        "update",
        Some("id"),
    ),
    change(
        "PUT",
        "/institutions/{id}/webhook",
        "webhook",
        "update",
        Some("id"),
    ),
    change(
        "PUT",
        "/institutions/{id}/chat-robot",
        "chat_robot",
        "update",
        Some("id"),
    ),
    change(
        "DELETE",
        "/institutions/{id}/chat-robot",
        "chat_robot",
        "delete",
        Some("id"),
    ),
    change(
        "PUT",
        "/institutions/{id}/imaging-destination",
        "imaging_destination",
        "update",
        Some("id"),
    ),
    change(
        "POST",
        "/institutions/{id}/imaging-destination/echo",
        "imaging_destination",
        "echo",
        Some("id"),
    ),
    change(
        "POST",
        "/institutions/{id}/dicom-nodes",
        "dicom_node",
        "create",
        None,
    ),
    change(
        "PATCH",
        "/institutions/{id}/dicom-nodes/{node}",
        "dicom_node",
        "update",
        Some("node"),
    ),
    change(
        "DELETE",
        "/institutions/{id}/dicom-nodes/{node}",
        "dicom_node",
        "delete",
        Some("node"),
    ),
    change(
        "POST",
        "/forwards/{id}/retry",
        "forward",
        "retry",
        Some("id"),
    ),
    change(
        "POST",
        "/forwards/{id}/cancel",
        "forward",
        "cancel",
        Some("id"),
    ),
    change("POST", "/clinicians", "clinician", "create", None),
    change(
        "PATCH",
        "/clinicians/{id}",
        "clinician",
        "update",
        Some("id"),
    ),
    change(
        "POST",
        "/clinicians/{id}/availability",
        "availability",
        "create",
        Some("id"),
    ),
    change(
        "POST",
        "/clinicians/{id}/availability/exceptions",
        "availability",
        "create",
        Some("id"),
    ),
    change(
        "DELETE",
        "/clinicians/{id}/availability/{rule}",
        "availability",
        "delete",
        Some("id"),
    ),
    change(
        "DELETE",
        "/clinicians/{id}/availability/exceptions/{exception}",
        "availability",
        "delete",
        Some("id"),
    ),
    change("POST", "/teams", "team", "create", None),
    change("PATCH", "/teams/{id}", "team", "update", Some("id")),
    change("POST", "/pairings", "pairing", "create", None),
    change("PATCH", "/pairings/{id}", "pairing", "update", Some("id")),
    change("POST", "/pairings/{id}/end", "pairing", "end", Some("id")),
    change(
        "PUT",
        "/pairings/{id}/targets/{year}",
        "pairing",
        "set_target",
        Some("id"),
    ),
    change("POST", "/teaching", "teaching_session", "create", None),
    change(
        "PATCH",
        "/teaching/{id}",
        "teaching_session",
        "update",
        Some("id"),
    ),
    change(
        "POST",
        "/teaching/{id}/cancel",
        "teaching_session",
        "cancel",
        Some("id"),
    ),
    change(
        "POST",
        "/teaching/{id}/enrol",
        "teaching_session",
        "enrol",
        Some("id"),
    ),
    change(
        "POST",
        "/teaching/{id}/withdraw",
        "teaching_session",
        "withdraw",
        Some("id"),
    ),
    change(
        "POST",
        "/teaching/{id}/attendance",
        "teaching_session",
        "attendance",
        Some("id"),
    ),
    change("POST", "/visits", "visit", "create", None),
    change(
        "GET",
        "/reports/pairings/{id}",
        "report",
        "read",
        Some("id"),
    ),
];

/// The answers whose id is read for the audit of a creation are at most this long.
const CREATED_BODY_LIMIT: usize = 64 * 1024;

/// Runs the request inside its audit [`Context`], and audits it when [`CHANGES`] names its
/// route.
pub(super) async fn context(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0);
    let address =
        super::auth::client_address(peer, request.headers(), &state.config.auth.trusted_proxies);
    let context = std::sync::Arc::new(Context::new(
        Some(address)
            .filter(|a| !a.is_unspecified())
            .map(|a| a.to_string()),
    ));
    let audited = audited(&request);
    crate::audit::CONTEXT
        .scope(context.clone(), async move {
            let Some((change, id, export)) = audited else {
                return next.run(request).await;
            };
            let response = next.run(request).await;
            record(&state, &context, change, id, export, response).await
        })
        .await
}

/// The change of `request`, the object id its path names, and whether it asks for an
/// export (`format=csv`).
fn audited(request: &Request) -> Option<(&'static Change, Option<i64>, bool)> {
    let route = request
        .extensions()
        .get::<MatchedPath>()?
        .as_str()
        .strip_prefix("/api/v1")?;
    let change = CHANGES
        .iter()
        .find(|c| c.route == route && c.method == request.method().as_str())?;
    let id = change.id.and_then(|name| {
        let wanted = format!("{{{name}}}");
        change
            .route
            .split('/')
            .zip(request.uri().path().strip_prefix("/api/v1")?.split('/'))
            .find(|(template, _)| *template == wanted)
            .and_then(|(_, value)| value.parse().ok())
    });
    let export = request.method() == Method::GET
        && request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "format=csv"));
    Some((change, id, export))
}

/// Records the change answered by `response`, and gives the response back.
async fn record(
    state: &AppState,
    context: &Context,
    change: &Change,
    id: Option<i64>,
    export: bool,
    response: Response,
) -> Response {
    let status = response.status();
    let (response, id) = if change.id.is_none() && status.is_success() {
        created_id(response).await
    } else {
        (response, id)
    };
    let action = if export { "export" } else { change.action };
    let event = match context.user() {
        Some(user) => Event::by(&user, change.kind, action),
        None => Event::unauthenticated(change.kind, action),
    };
    let event = event.id(id);
    let event = if status.is_success() {
        event
    } else {
        event
            .denied()
            .detail(format!("answered {}", status.as_u16()))
    };
    if let Err(e) = event.record(&state.store).await {
        tracing::error!(error = %e, kind = change.kind, "cannot audit a change");
    }
    response
}

/// The `id` of what a creation's JSON answer describes, and the answer unchanged.
async fn created_id(response: Response) -> (Response, Option<i64>) {
    use axum::body::HttpBody as _;
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    let small = response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|n| n <= CREATED_BODY_LIMIT as u64);
    if !(json && small) {
        return (response, None);
    }
    let (parts, body) = response.into_parts();
    // Whole and small (its exact size is known), so it is read entire.
    let bytes = axum::body::to_bytes(body, CREATED_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let id = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("id").and_then(serde_json::Value::as_i64));
    (Response::from_parts(parts, Body::from(bytes)), id)
}

#[cfg(test)]
mod tests {
    use super::CHANGES;

    /// Change routes audited where the change is decided (the booking service, the rounds,
    /// the rooms, sign-in and accounts), or that change only the caller's own notices.
    const ELSEWHERE: &[&str] = &[
        "post /auth/login",
        "post /auth/login/second-factor",
        "post /auth/logout",
        "post /me/two-factor",
        "delete /me/two-factor",
        "post /me/two-factor/confirm",
        "post /me/password",
        "post /users",
        "patch /users/{id}",
        "post /users/{id}/password-reset",
        "delete /users/{id}/two-factor",
        "post /requests",
        "patch /requests/{id}",
        "post /requests/{id}/{step}",
        "put /requests/{id}/opinions",
        "post /requests/{id}/attachments",
        "post /ward-rounds",
        "patch /ward-rounds/{id}",
        "post /ward-rounds/{id}/cancel",
        "post /ward-rounds/{id}/patients",
        "put /ward-rounds/{id}/patients/{patient}/note",
        "post /sessions/{session}/join",
        "post /sessions/{session}/messages",
        "post /notifications/{id}/read",
        "post /notifications/read",
        "put /me/notices",
    ];

    #[test]
    fn every_change_route_is_audited_here_or_where_it_is_decided() {
        let (_, openapi) = super::super::api().split_for_parts();
        let doc = serde_json::to_value(&openapi).unwrap();
        let mut unaudited = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "put", "patch", "delete"] {
                if item.get(method).is_none() {
                    continue;
                }
                let here = CHANGES
                    .iter()
                    .any(|c| c.route == path && c.method.eq_ignore_ascii_case(method));
                let named = format!("{method} {path}");
                if !here && !ELSEWHERE.contains(&named.as_str()) {
                    unaudited.push(named);
                }
            }
        }
        assert!(
            unaudited.is_empty(),
            "change routes nobody audits: {unaudited:?}"
        );
        // And the table names only routes that exist.
        for c in CHANGES {
            let method = c.method.to_ascii_lowercase();
            assert!(
                doc["paths"][c.route].get(&method).is_some(),
                "{} {} is not a route",
                c.method,
                c.route
            );
        }
    }
}
