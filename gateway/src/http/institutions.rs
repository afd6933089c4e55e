//! `/institutions`: search the registry's institutions; administrators add them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::domain::{Institution, Kind, Level, RegionPath, normalize_name};
use crate::error::{Error, Problem};
use crate::store::{DicomNode, InstitutionFilter, NewInstitution};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_institutions, create_institution))
        .routes(routes!(get_institution))
        .routes(routes!(set_webhook))
        .routes(routes!(list_dicom_nodes, add_dicom_node))
}

/// Refuses unless the caller is the institution's coordinator or an administrator, and
/// the institution exists.
async fn require_own(state: &AppState, caller: &Caller, id: i64, what: &str) -> Result<(), Error> {
    let own = caller.0.is(crate::domain::Role::Coordinator) && caller.0.institution_id == id;
    if !own && !caller.0.is(crate::domain::Role::Admin) {
        return Err(Error::forbidden(format!(
            "the institution's coordinators or an administrator {what}"
        )));
    }
    state
        .store
        .institution(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))?;
    Ok(())
}

/// A DICOM node to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DicomNodeInput {
    /// The calling AE title of the modality or PACS (1 to 16 characters).
    ae_title: String,
    /// The IP address it calls from, or `*` for any.
    host: String,
}

/// A DICOM node allowed to send to the relay.
#[derive(Debug, Serialize, ToSchema)]
pub struct DicomNodeOut {
    /// Node id.
    id: i64,
    /// Its institution.
    institution_id: i64,
    /// Calling AE title.
    ae_title: String,
    /// The address it calls from, or `*`.
    host: String,
}

impl From<DicomNode> for DicomNodeOut {
    fn from(n: DicomNode) -> Self {
        Self {
            id: n.id,
            institution_id: n.institution_id,
            ae_title: n.ae_title,
            host: n.host,
        }
    }
}

/// Registers a modality or PACS of the institution that may send studies to the relay:
/// its coordinators or an administrator.
#[utoipa::path(post, path = "/institutions/{id}/dicom-nodes", tag = "imaging", params(("id" = i64, Path)),
    request_body = DicomNodeInput,
    responses((status = 201, body = DicomNodeOut), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn add_dicom_node(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<DicomNodeInput>,
) -> Result<(StatusCode, Json<DicomNodeOut>), Error> {
    require_own(&state, &caller, id, "register its DICOM nodes").await?;
    let ae = duikou_imaging::AeTitle::parse(&input.ae_title)
        .map_err(|e| Error::field("ae_title", e.to_string()))?;
    let host = input.host.trim();
    if host != "*" && host.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::field("host", "an IP address, or * for any"));
    }
    let node = state.store.add_dicom_node(id, ae.as_str(), host).await?;
    Ok((StatusCode::CREATED, Json(node.into())))
}

/// The institution's registered DICOM nodes: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/dicom-nodes", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<DicomNodeOut>), (status = 403, body = Problem)))]
async fn list_dicom_nodes(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<DicomNodeOut>>, Error> {
    require_own(&state, &caller, id, "see its DICOM nodes").await?;
    let nodes = state.store.dicom_nodes(Some(id)).await?;
    Ok(Json(nodes.into_iter().map(DicomNodeOut::from).collect()))
}

/// Search parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InstitutionQuery {
    /// Institutions in this region or below it, e.g. `广东省/江门市/台山市`.
    region: Option<RegionPath>,
    /// Tier.
    level: Option<Level>,
    /// Kind.
    kind: Option<Kind>,
    /// Remote (偏远 / 老区村) only, or non-remote only.
    remote: Option<bool>,
    /// Part of the name.
    name: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<i64>,
    /// Rows to skip.
    offset: Option<i64>,
}

/// Searches institutions. Any logged-in user.
#[utoipa::path(get, path = "/institutions", tag = "registry", params(InstitutionQuery),
    responses((status = 200, body = Vec<Institution>), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_institutions(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<InstitutionQuery>,
) -> Result<Json<Vec<Institution>>, Error> {
    let (limit, offset) = page(q.limit, q.offset)?;
    let filter = InstitutionFilter {
        region: q.region.map(String::from),
        level: q.level.map(|l| l.as_str().to_owned()),
        kind: q.kind.map(|k| k.as_str().to_owned()),
        remote: q.remote,
        name: q.name.map(|n| normalize_name(&n)).filter(|n| !n.is_empty()),
        limit,
        offset,
    };
    Ok(Json(state.store.institutions(&filter).await?))
}

/// One institution. Any logged-in user.
#[utoipa::path(get, path = "/institutions/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Institution), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_institution(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Institution>, Error> {
    state
        .store
        .institution(id)
        .await?
        .map(Json)
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))
}

/// A new institution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionInput {
    /// Name; stray spaces are removed.
    name: String,
    /// Tier.
    level: Level,
    /// Kind.
    kind: Kind,
    /// Region path.
    #[schema(value_type = String)]
    region: RegionPath,
    /// 偏远 / 老区村.
    #[serde(default)]
    remote: bool,
}

/// Adds an institution. Administrators only.
#[utoipa::path(post, path = "/institutions", tag = "registry", request_body = InstitutionInput,
    responses((status = 201, body = Institution), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_institution(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<InstitutionInput>,
) -> Result<(StatusCode, Json<Institution>), Error> {
    caller.require_admin("add institutions")?;
    let name = normalize_name(&input.name);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let new = NewInstitution {
        name,
        level: input.level.as_str().into(),
        kind: input.kind.as_str().into(),
        region: input.region.into(),
        remote: input.remote,
    };
    Ok((
        StatusCode::CREATED,
        Json(state.store.create_institution(&new).await?),
    ))
}

/// Where an institution receives notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An `https://` (or `http://`, inside a hospital network) URL.
    url: String,
    /// The shared secret for `X-Duikou-Signature`, at least 16 characters.
    secret: String,
}

/// Sets the institution's webhook: its coordinators or an administrator.
#[utoipa::path(put, path = "/institutions/{id}/webhook", tag = "registry", params(("id" = i64, Path)), request_body = WebhookInput,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn set_webhook(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(input): ApiJson<WebhookInput>,
) -> Result<StatusCode, Error> {
    require_own(&state, &caller, id, "set its webhook").await?;
    let url = input.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        return Err(Error::field("url", "an http:// or https:// URL"));
    }
    // Where it leads is checked now, to tell the coordinator, and again at every call.
    let policy = state.config.outbound_policy();
    crate::notify::check_url(url, &policy).map_err(|e| Error::field("url", e))?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if let Err(e @ duikou_imaging::outbound::Refused::Address(_)) = policy.resolve(&host, 0).await {
        return Err(Error::field("url", e.to_string()));
    }
    if input.secret.chars().count() < 16 {
        return Err(Error::field("secret", "at least 16 characters"));
    }
    state.store.set_webhook(id, url, &input.secret).await?;
    Ok(StatusCode::NO_CONTENT)
}
