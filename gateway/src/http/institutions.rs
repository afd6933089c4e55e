//! `/institutions`: search the registry's institutions; administrators add and change
//! them, and each institution's coordinators set its webhook and keep its DICOM nodes ([`crate::registry`] and
//! [`crate::imaging::setup`] decide who may).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::{ApiJson, ApiQuery, Id};
use super::{AppState, page};
use crate::domain::{Institution, Kind, Level, RegionPath};
use crate::error::{Error, Problem};
use crate::imaging::setup::{self, DicomNodeChange, DicomNodeInput};
use crate::registry::{self, InstitutionChange, InstitutionInput, InstitutionSearch, WebhookInput};
use crate::store::DicomNode;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_institutions, create_institution))
        .routes(routes!(get_institution, update_institution))
        .routes(routes!(set_webhook))
        .routes(routes!(list_dicom_nodes, add_dicom_node))
        .routes(routes!(change_dicom_node, remove_dicom_node))
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
    /// What it is, in its keepers' words; may be empty.
    description: String,
}

impl From<DicomNode> for DicomNodeOut {
    fn from(n: DicomNode) -> Self {
        Self {
            id: n.id,
            institution_id: n.institution_id,
            ae_title: n.ae_title.into(),
            host: n.host,
            description: n.description,
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
    let node = setup::add_dicom_node(&state.store, &caller.0, id, input).await?;
    Ok((StatusCode::CREATED, Json(node.into())))
}

/// Changes a registered DICOM node (its AE title, the address it calls from): the
/// institution's coordinators or an administrator. The next association is answered by
/// the change.
#[utoipa::path(patch, path = "/institutions/{id}/dicom-nodes/{node}", tag = "imaging",
    params(("id" = i64, Path), ("node" = i64, Path)), request_body = DicomNodeChange,
    responses((status = 200, body = DicomNodeOut), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn change_dicom_node(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, node)): axum::extract::Path<(i64, i64)>,
    ApiJson(change): ApiJson<DicomNodeChange>,
) -> Result<Json<DicomNodeOut>, Error> {
    let node = setup::change_dicom_node(&state.store, &caller.0, id, node, change).await?;
    Ok(Json(node.into()))
}

/// Removes a registered DICOM node: from its next association on, the relay refuses it.
/// The institution's coordinators or an administrator.
#[utoipa::path(delete, path = "/institutions/{id}/dicom-nodes/{node}", tag = "imaging",
    params(("id" = i64, Path), ("node" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn remove_dicom_node(
    State(state): State<AppState>,
    caller: Caller,
    axum::extract::Path((id, node)): axum::extract::Path<(i64, i64)>,
) -> Result<StatusCode, Error> {
    setup::remove_dicom_node(&state.store, &caller.0, id, node).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The institution's registered DICOM nodes: its coordinators or an administrator.
#[utoipa::path(get, path = "/institutions/{id}/dicom-nodes", tag = "imaging", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<DicomNodeOut>), (status = 403, body = Problem)))]
async fn list_dicom_nodes(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
) -> Result<Json<Vec<DicomNodeOut>>, Error> {
    let nodes = setup::dicom_nodes(&state.store, &caller.0, id).await?;
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
    let search = InstitutionSearch {
        region: q.region,
        level: q.level,
        kind: q.kind,
        remote: q.remote,
        name: q.name,
    };
    Ok(Json(
        registry::institutions(&state.store, search, limit, offset).await?,
    ))
}

/// One institution. Any logged-in user.
#[utoipa::path(get, path = "/institutions/{id}", tag = "registry", params(("id" = i64, Path)),
    responses((status = 200, body = Institution), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_institution(
    State(state): State<AppState>,
    _caller: Caller,
    Id(id): Id,
) -> Result<Json<Institution>, Error> {
    Ok(Json(registry::institution(&state.store, id).await?))
}

/// Adds an institution. Administrators only.
#[utoipa::path(post, path = "/institutions", tag = "registry", request_body = InstitutionInput,
    responses((status = 201, body = Institution), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_institution(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<InstitutionInput>,
) -> Result<(StatusCode, Json<Institution>), Error> {
    let institution = registry::create_institution(&state.store, &caller.0, input).await?;
    Ok((StatusCode::CREATED, Json(institution)))
}

/// Changes an institution: administrators only. A change of level or kind that would
/// contradict a pairing that stands is refused (`contradicts-pairing`, naming the field);
/// a name taken in the region is `already-registered`.
#[utoipa::path(patch, path = "/institutions/{id}", tag = "registry", params(("id" = i64, Path)), request_body = InstitutionChange,
    responses((status = 200, body = Institution), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_institution(
    State(state): State<AppState>,
    caller: Caller,
    Id(id): Id,
    ApiJson(change): ApiJson<InstitutionChange>,
) -> Result<Json<Institution>, Error> {
    let institution = registry::update_institution(&state.store, &caller.0, id, change).await?;
    Ok(Json(institution))
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
    let policy = state.config.outbound_policy();
    registry::set_webhook(&state.store, &policy, &caller.0, id, input).await?;
    Ok(StatusCode::NO_CONTENT)
}
