//! `/audit`: the audit log, for administrators: filtered by time, user, institution,
//! action, object, patient and outcome, as JSON pages or as one CSV export (itself
//! audited).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveTime, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::Caller;
use super::extract::ApiQuery;
use super::{AppState, page};
use crate::audit::Event;
use crate::booking::{self, china};
use crate::error::{Error, Problem};
use crate::store::{AuditEntry, AuditFilter, Outcome, Store};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit))
}

/// The most entries one CSV export holds; a wider choice is refused (narrow the dates).
const EXPORT_MOST: i64 = 100_000;

/// Audit log filter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// By user.
    user_id: Option<i64>,
    /// By institution.
    institution_id: Option<i64>,
    /// By action, e.g. `read`, `login`, `export`.
    action: Option<String>,
    /// By object kind, e.g. `request`, `study`.
    object_kind: Option<String>,
    /// By object id.
    object_id: Option<i64>,
    /// By a study UID: entries on it, its series and its instances.
    reference: Option<String>,
    /// Entries about a patient whose name contains this.
    patient: Option<String>,
    /// `allowed` or `denied`.
    outcome: Option<Outcome>,
    /// From this day on (China time), `YYYY-MM-DD`.
    since: Option<NaiveDate>,
    /// Up to and including this day (China time), `YYYY-MM-DD`.
    until: Option<NaiveDate>,
    /// `json` (default, a page) or `csv` (every entry chosen, at most 100 000; audited).
    format: Option<String>,
    /// Page size, 1 to 1000 (default 100); not for CSV.
    limit: Option<i64>,
    /// Rows to skip; not for CSV.
    offset: Option<i64>,
}

/// One audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditOut {
    /// Its number in the chain.
    id: i64,
    /// When.
    at: DateTime<Utc>,
    /// Who.
    user_id: Option<i64>,
    /// Their name (the account's).
    user_name: Option<String>,
    /// Their roles at the time.
    roles: String,
    /// Their institution.
    institution_id: Option<i64>,
    /// Its name.
    institution_name: Option<String>,
    /// What they did: `read`, `list`, `search`, `create`, `update`, `login`, `export`, or
    /// a workflow step.
    action: String,
    /// On what kind of object.
    object_kind: String,
    /// Which one, by id.
    object_id: Option<i64>,
    /// Which one, by UID (studies, series, instances).
    object_ref: Option<String>,
    /// The patient whose record it was.
    patient: Option<String>,
    /// `allowed` or `denied`.
    outcome: Outcome,
    /// The client's address.
    client: Option<String>,
    /// Why it was denied, what changed, or what was searched for.
    detail: Option<String>,
}

impl AuditOut {
    fn new(id: i64, e: AuditEntry) -> Self {
        Self {
            id,
            at: e.at,
            user_id: e.user_id,
            user_name: None,
            roles: e.roles,
            institution_id: e.institution_id,
            institution_name: None,
            action: e.action,
            object_kind: e.object_kind,
            object_id: e.object_id,
            object_ref: e.object_ref,
            patient: e.patient,
            outcome: e.outcome,
            client: e.client,
            detail: e.detail,
        }
    }
}

/// The audit log, newest first: a page as JSON, or every entry chosen as CSV (the export
/// is audited, with its filter). Administrators only; it cannot be changed.
#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, content((Vec<AuditOut> = "application/json"), (String = "text/csv"))),
        (status = 403, body = Problem), (status = 422, body = Problem)))]
async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Response, Error> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(Error::field("format", "json or csv")),
    };
    let (limit, offset) = if csv {
        if q.limit.is_some() || q.offset.is_some() {
            return Err(Error::field(
                "limit",
                "a CSV export holds every entry chosen: choose them by date instead",
            ));
        }
        (EXPORT_MOST + 1, 0)
    } else {
        page(q.limit, q.offset)?
    };
    let day = |d: NaiveDate| {
        china()
            .from_local_datetime(&d.and_time(NaiveTime::MIN))
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    if let (Some(since), Some(until)) = (q.since, q.until)
        && until < since
    {
        return Err(Error::field("until", "until is not before since"));
    }
    let patient = q
        .patient
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty());
    let filter = AuditFilter {
        user_id: q.user_id,
        institution_id: q.institution_id,
        object_kind: q.object_kind,
        object_id: q.object_id,
        action: q.action,
        outcome: q.outcome,
        patient,
        reference: q.reference,
        since: q.since.and_then(day),
        until: q.until.and_then(|d| d.succ_opt()).and_then(day),
        limit,
        offset,
    };
    let entries = booking::audit_entries(&state.store, &caller.0, filter.clone()).await?;
    if csv && entries.len() as i64 > EXPORT_MOST {
        return Err(Error::field(
            "since",
            "more than 100 000 entries are chosen: export fewer days at a time",
        ));
    }
    let rows = named(&state.store, entries).await?;
    if !csv {
        return Ok(Json(rows).into_response());
    }
    let body = to_csv(&rows)?;
    Event::by(&caller.0, "audit", "export")
        .detail(format!("{} entries; {}", rows.len(), described(&filter)))
        .record(&state.store)
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// The entries with people and institutions by name, each looked up once.
async fn named(store: &Store, entries: Vec<(i64, AuditEntry)>) -> Result<Vec<AuditOut>, Error> {
    let mut users = HashMap::new();
    let mut institutions = HashMap::new();
    let mut out = Vec::with_capacity(entries.len());
    for (id, e) in entries {
        let mut row = AuditOut::new(id, e);
        if let Some(id) = row.user_id {
            if let Entry::Vacant(slot) = users.entry(id) {
                slot.insert(store.user(id).await?.map(|u| u.display_name));
            }
            row.user_name.clone_from(&users[&id]);
        }
        if let Some(id) = row.institution_id {
            if let Entry::Vacant(slot) = institutions.entry(id) {
                slot.insert(store.institution(id).await?.map(|i| i.name));
            }
            row.institution_name.clone_from(&institutions[&id]);
        }
        out.push(row);
    }
    Ok(out)
}

/// The export: one row per entry, times in China time. A UTF-8 byte order mark leads, so
/// that spreadsheet programs read the Chinese names.
fn to_csv(rows: &[AuditOut]) -> Result<Vec<u8>, Error> {
    let csv_err = |e: csv::Error| Error::Internal(e.into());
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record([
        "id",
        "at",
        "user_id",
        "user_name",
        "roles",
        "institution_id",
        "institution_name",
        "action",
        "object_kind",
        "object_id",
        "object_ref",
        "patient",
        "outcome",
        "client",
        "detail",
    ])
    .map_err(csv_err)?;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let number = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    for r in rows {
        w.write_record([
            r.id.to_string(),
            r.at.with_timezone(&china())
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            number(r.user_id),
            text(&r.user_name),
            r.roles.clone(),
            number(r.institution_id),
            text(&r.institution_name),
            r.action.clone(),
            r.object_kind.clone(),
            number(r.object_id),
            text(&r.object_ref),
            text(&r.patient),
            r.outcome.as_str().to_owned(),
            text(&r.client),
            text(&r.detail),
        ])
        .map_err(csv_err)?;
    }
    w.into_inner()
        .map_err(|e| Error::Internal(e.into_error().into()))
}

/// What an export chose, for its own audit entry.
fn described(f: &AuditFilter) -> String {
    let mut parts = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            parts.push(format!("{name}={v}"));
        }
    };
    add("user_id", f.user_id.map(|v| v.to_string()));
    add("institution_id", f.institution_id.map(|v| v.to_string()));
    add("action", f.action.clone());
    add("object_kind", f.object_kind.clone());
    add("object_id", f.object_id.map(|v| v.to_string()));
    add("patient", f.patient.clone());
    add("reference", f.reference.clone());
    add("outcome", f.outcome.map(|o| o.as_str().to_owned()));
    add("since", f.since.map(|t| t.to_rfc3339()));
    add("until", f.until.map(|t| t.to_rfc3339()));
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join(" ")
    }
}
