//! `/requests`: remote consultation and read requests, their workflow and opinions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::booking::attachments;
use crate::booking::{
    self, AttachmentInfo, NewRequestInput, OpinionView, RequestContent, RequestOrder, RequestState,
    RequestView, Step, StepInput, Urgency,
};
use crate::error::{Error, Problem};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests, create_request))
        .routes(routes!(get_request, update_request))
        .routes(routes!(take_step))
        .routes(routes!(list_consultants))
        .routes(routes!(my_supporter))
        .routes(routes!(list_opinions, save_opinion))
        .routes(routes!(get_opinion_pdf))
        .routes(routes!(list_attachments, add_attachment))
        .routes(routes!(get_attachment))
}

/// Which requests, in which order.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RequestQuery {
    /// `inbox`: addressed to the caller's institution. `outbox` (default): made by it.
    #[serde(rename = "box")]
    #[param(rename = "box")]
    mailbox: Option<Mailbox>,
    /// Only these states: one, or several separated by commas (`accepted,scheduled`).
    #[param(example = "accepted,scheduled")]
    state: Option<String>,
    /// `priority` (default): urgent first, then remote institutions, then first come
    /// (submitted, or created for drafts). `newest`: the newest first (by the same time,
    /// submission or creation for drafts, latest first).
    order: Option<RequestOrder>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// Incoming or outgoing.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mailbox {
    /// Addressed to the caller's institution.
    Inbox,
    /// Made by the caller's institution.
    Outbox,
}

/// The caller's institution's requests, a page at a time, in the order asked for; an
/// unknown state, order or page size is refused naming its field.
#[utoipa::path(get, path = "/requests", tag = "requests", params(RequestQuery),
    responses((status = 200, body = Vec<RequestView>), (status = 401, body = Problem), (status = 403, body = Problem),
              (status = 422, body = Problem)))]
async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RequestQuery>,
) -> Result<Json<Vec<RequestView>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let inbox = matches!(q.mailbox, Some(Mailbox::Inbox));
    let states = q.state.as_deref().map(states).transpose()?;
    let list = booking::list_requests(
        &state.store,
        &caller.0,
        inbox,
        states,
        q.order.unwrap_or_default(),
        limit,
        offset,
    )
    .await?;
    Ok(Json(list))
}

/// The states of `state=a,b`: each one named, at least one.
fn states(list: &str) -> Result<Vec<RequestState>, Error> {
    let states = list
        .split(',')
        .map(|s| s.trim().parse::<RequestState>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::field("state", e.to_string()))?;
    Ok(states)
}

/// Creates a draft addressed to the designated supporter; anyone else is refused. With
/// `submit: true` the request is created submitted, in one transaction with every check
/// of submission: a refusal (422 listing every gap in `errors`) leaves no draft behind.
#[utoipa::path(post, path = "/requests", tag = "requests", request_body = NewRequestInput,
    responses((status = 201, body = RequestView), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<NewRequestInput>,
) -> Result<(StatusCode, Json<RequestView>), Error> {
    let view =
        booking::create_request_with(&state.store, &state.config.booking, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The service asked about.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SupporterQuery {
    /// The kind of request.
    kind: booking::RequestKind,
    /// The day the service is wanted (now when left out): pairings have periods.
    at: Option<DateTime<Utc>>,
}

/// The designated supporter of the caller's institution for a kind of request, before a
/// request is written; or the problem that leaves it without one: `unpaired-supporter`
/// (no pairing), `outside-pairing-period` (none in force then, ended or not begun),
/// `service-not-covered` (the pairing does not cover the service).
#[utoipa::path(get, path = "/me/supporter", tag = "requests", params(SupporterQuery),
    responses((status = 200, body = booking::DesignatedSupporter), (status = 401, body = Problem),
              (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn my_supporter(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SupporterQuery>,
) -> Result<Json<booking::DesignatedSupporter>, Error> {
    Ok(Json(
        booking::designated_supporter(&state.store, &caller.0, q.kind, q.at).await?,
    ))
}

/// The supporting institution's clinicians who qualify to answer the request (licence,
/// three years of practice, the title asked for or higher, the role that answers its
/// kind), the specialty asked for first, then by rank, then by years of practice.
#[utoipa::path(get, path = "/requests/{id}/consultants", tag = "requests", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<booking::ConsultantCandidate>), (status = 403, body = Problem),
              (status = 404, body = Problem)))]
async fn list_consultants(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<booking::ConsultantCandidate>>, Error> {
    Ok(Json(
        booking::consultants(&state.store, &caller.0, id).await?,
    ))
}

/// One request with its steps; for the two institutions only, and audited.
#[utoipa::path(get, path = "/requests/{id}", tag = "requests", params(("id" = i64, Path)),
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(
        booking::request_view(&state.store, &caller.0, id).await?,
    ))
}

/// Changes to a draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftUpdate {
    /// The version the caller saw.
    version: Option<i32>,
    /// New urgency.
    urgency: Option<Urgency>,
    /// The parts to replace; parts left out keep their value.
    #[serde(default)]
    content: RequestContent,
}

/// Edits a draft.
#[utoipa::path(patch, path = "/requests/{id}", tag = "requests", params(("id" = i64, Path)), request_body = DraftUpdate,
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_request(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(u): ApiJson<DraftUpdate>,
) -> Result<Json<RequestView>, Error> {
    Ok(Json(
        booking::update_draft(&state.store, &caller.0, id, u.version, u.urgency, u.content).await?,
    ))
}

/// Takes a workflow step: `submit`, `accept` (with `consultant_id`), `decline` (with
/// `reason_code` and `reason_text`), `schedule` (with `start` and `end`), `start`, `sign`
/// (with the caller's `password`, asked again: a missing or wrong one is refused with 422
/// naming `password`, guesses are throttled like logins with 429, and nothing changes),
/// `acknowledge`, `close`, `cancel`.
#[utoipa::path(post, path = "/requests/{id}/{step}", tag = "requests",
    params(("id" = i64, Path), ("step" = Step, Path)), request_body = StepInput,
    responses((status = 200, body = RequestView), (status = 403, body = Problem), (status = 404, body = Problem),
              (status = 409, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
async fn take_step(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, step)): axum::extract::Path<(String, String)>,
    body: Option<ApiJson<StepInput>>,
) -> Result<Json<RequestView>, Error> {
    let id = id
        .parse::<i64>()
        .map_err(|_| Error::NotFound(format!("request {id:?}")))?;
    let step = step
        .parse::<Step>()
        .map_err(|e| Error::NotFound(format!("step: {e}; the step")))?;
    let input = body.map(|ApiJson(b)| b).unwrap_or_default();
    if step == Step::Sign {
        let password = input.password.as_ref().map(crate::config::Secret::expose);
        super::auth::reauthenticate(&state, &caller.0, password, step.as_str(), id).await?;
    }
    Ok(Json(
        booking::take_step(
            &state.store,
            &state.config.booking,
            &caller.0,
            id,
            step,
            input,
        )
        .await?,
    ))
}

/// The opinions the caller may see: every signed version, with its signer (name, title,
/// institution, as at signing), its time in China and its document's hash; drafts only
/// for the supporter.
#[utoipa::path(get, path = "/requests/{id}/opinions", tag = "requests", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<OpinionView>), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_opinions(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<OpinionView>>, Error> {
    Ok(Json(booking::opinions(&state.store, &caller.0, id).await?))
}

/// The signed opinion as a PDF to file, as of signed version `version` (each amendment is
/// a version of its own): in Chinese, the request's facts, the case summary, the versions
/// up to this one with their signers, the signature block and the document hash (SHA-256
/// of the canonical form of the facts and versions; the same as the opinion's
/// `document_sha256`). For those who read the opinions, audited as a read. 503 when the
/// server has no font with Chinese glyphs (`[documents] font`).
#[utoipa::path(get, path = "/requests/{id}/opinions/{version}/pdf", tag = "requests",
    params(("id" = i64, Path), ("version" = i32, Path)),
    responses((status = 200, body = Vec<u8>, content_type = "application/pdf",
               headers(("Content-Disposition" = String, description = "inline; filename=\"opinion-<id>-v<version>.pdf\""),
                       ("X-Document-SHA256" = String, description = "the document hash printed in it"))),
              (status = 403, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)))]
async fn get_opinion_pdf(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, version)): axum::extract::Path<(i64, i32)>,
) -> Result<axum::response::Response, Error> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse as _;
    let doc = booking::opinion_document(&state.store, &caller.0, id, version).await?;
    let documents = state.documents.clone();
    let _turn = state.documents.turn().await;
    let (hash, pdf) = tokio::task::spawn_blocking(move || {
        let font = documents
            .font()
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let hash = doc.sha256();
        let pdf = crate::documents::pdf::render(&doc, &hash, &font)?;
        Ok::<_, Error>((hash, pdf))
    })
    .await
    .map_err(anyhow::Error::from)??;
    let disposition = format!("inline; filename=\"opinion-{id}-v{version}.pdf\"");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/pdf"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::try_from(disposition).map_err(anyhow::Error::from)?,
            ),
            // Patient data, on a computer a ward shares: never kept in a cache.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::HeaderName::from_static("x-document-sha256"),
                HeaderValue::try_from(hash).map_err(anyhow::Error::from)?,
            ),
        ],
        pdf,
    )
        .into_response())
}

/// The consultant's draft.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionDraft {
    /// The opinion's text.
    body: String,
}

/// Writes the consultant's draft opinion; after signing, a new draft is an amendment.
#[utoipa::path(put, path = "/requests/{id}/opinions", tag = "requests", params(("id" = i64, Path)), request_body = OpinionDraft,
    responses((status = 200, body = Vec<OpinionView>), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn save_opinion(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(draft): ApiJson<OpinionDraft>,
) -> Result<Json<Vec<OpinionView>>, Error> {
    Ok(Json(
        booking::save_opinion(&state.store, &caller.0, id, draft.body).await?,
    ))
}

/// Attaches a PDF, JPEG or PNG (the body, with its `Content-Type`) to a request; the
/// requesting institution's clinicians, until the request is closed. The file name comes
/// in `Content-Disposition` (RFC 6266), never in the URL, which proxies log: a name that
/// may name the patient is sent as `attachment; filename*=UTF-8''<percent-encoded>`
/// (RFC 8187), a plain ASCII one may be `attachment; filename="…"`; one header only. The
/// same file sent twice is kept once, under its first name, which the reply gives.
#[utoipa::path(post, path = "/requests/{id}/attachments", tag = "requests",
    params(("id" = i64, Path),
           ("Content-Disposition" = String, Header, example = "attachment; filename*=UTF-8''%E7%9F%A5%E6%83%85%E5%90%8C%E6%84%8F%E4%B9%A6.pdf",
            description = "The file name to keep: trimmed, 1 to 200 bytes, not . or .., no slashes, backslashes, control or invisible characters (bidirectional overrides, zero-width characters)")),
    request_body(content = Vec<u8>, content_type = "application/pdf"),
    responses((status = 201, body = AttachmentInfo), (status = 403, body = Problem), (status = 413, body = Problem),
              (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn add_attachment(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<AttachmentInfo>), Error> {
    attachments::may_attach(&state.store, &caller.0, id).await?;
    let filename = super::disposition::upload_filename(&headers).map_err(|e| {
        Error::field(
            "filename",
            crate::text::Text::new("problem.attachment.filename", e.to_string()),
        )
    })?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let limit = state.config.booking.max_attachment_bytes;
    let bytes = super::extract::read_limited(body, limit).await?;
    let info = attachments::attach(
        &state.store,
        &state.config.data.dir,
        &caller.0,
        id,
        filename,
        content_type,
        bytes.into(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// A request's attachments.
#[utoipa::path(get, path = "/requests/{id}/attachments", tag = "requests", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<AttachmentInfo>), (status = 403, body = Problem)))]
async fn list_attachments(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<AttachmentInfo>>, Error> {
    booking::open_request(&state.store, &caller.0, id, "read_attachments").await?;
    Ok(Json(state.store.attachments(id).await?))
}

/// One attachment's bytes, checked against their checksum, with its file name in
/// `Content-Disposition: inline; filename*=UTF-8''…` (RFC 6266, RFC 8187), not to be
/// sniffed (`nosniff`), cached (`no-store`) or run with the site's origin (CSP `sandbox`).
#[utoipa::path(get, path = "/requests/{id}/attachments/{attachment}", tag = "requests",
    params(("id" = i64, Path), ("attachment" = i64, Path)),
    responses((status = 200, body = Vec<u8>, content_type = "application/octet-stream",
               headers(("Content-Disposition" = String, description = "inline; filename*=UTF-8''<the file name, percent-encoded>"),
                       ("X-Content-Type-Options" = String, description = "nosniff"),
                       ("Cache-Control" = String, description = "no-store"),
                       ("Content-Security-Policy" = String, description = "sandbox"))),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn get_attachment(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, attachment)): axum::extract::Path<(i64, i64)>,
) -> Result<axum::response::Response, Error> {
    use axum::response::IntoResponse as _;
    let detail = Some(format!("attachment {attachment}"));
    booking::open_request_for(&state.store, &caller.0, id, "read_attachment", detail).await?;
    let a = state
        .store
        .attachments(id)
        .await?
        .into_iter()
        .find(|a| a.id == attachment)
        .ok_or_else(|| Error::NotFound(format!("attachment {attachment}")))?;
    let bytes = tokio::fs::read(booking::path_of(&state.config.data.dir, &a.sha256))
        .await
        .map_err(anyhow::Error::from)?;
    use sha2::Digest as _;
    if hex::encode(sha2::Sha256::digest(&bytes)) != a.sha256 {
        return Err(Error::Internal(anyhow::anyhow!(
            "attachment {} no longer matches its checksum",
            a.id
        )));
    }
    use axum::http::{HeaderValue, header};
    let disposition = super::disposition::inline(&a.filename);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::try_from(a.content_type).map_err(anyhow::Error::from)?,
            ),
            (header::CONTENT_DISPOSITION, disposition),
            // Shown in the browser on the gateway's own origin: never as anything but the
            // type checked at upload, never kept in a cache (a patient's file, on a
            // computer a ward shares), and with no access to the origin should a
            // browser render it as a document after all.
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox"),
            ),
        ],
        bytes,
    )
        .into_response())
}
