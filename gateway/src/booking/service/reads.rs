//! Reading requests: one, a list, the free slots to book, and the audit log of a request.

use chrono::Utc;

use crate::booking::request::{ConsultRequest, RequestOrder, RequestState};
use crate::booking::slots::{Slot, china, free_slots};
use crate::domain::{Role, User};
use crate::rules::Error;
use crate::store::{AuditEntry, AuditFilter, RequestFilter, Store};

use super::{Access, READERS, RequestView, access, audit, load, view};

/// Loads a request for `caller`, refusing (and auditing the refusal) unless they are of
/// one of its two institutions; the allowed access is audited as `action`.
pub async fn open_request(
    store: &Store,
    caller: &User,
    id: i64,
    action: &str,
) -> Result<(ConsultRequest, Access), Error> {
    open_request_for(store, caller, id, action, None).await
}

/// [`open_request`], with what within the request is read (`detail`, say `attachment 3`)
/// in its audit entry.
pub async fn open_request_for(
    store: &Store,
    caller: &User,
    id: i64,
    action: &str,
    detail: Option<String>,
) -> Result<(ConsultRequest, Access), Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, action).await?;
    audit(store, caller, action, Some(id), true, detail).await?;
    Ok((r, side))
}

/// One request, for either institution's clinicians; the read is audited.
pub async fn request_view(store: &Store, caller: &User, id: i64) -> Result<RequestView, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "read").await?;
    audit(store, caller, "read", Some(id), true, None).await?;
    view(store, r).await
}

/// The caller's institution's requests: `inbox` (addressed to it) or `outbox` (made by
/// it), in `order`.
pub async fn list_requests(
    store: &Store,
    caller: &User,
    inbox: bool,
    states: Option<Vec<RequestState>>,
    order: RequestOrder,
    limit: i64,
    offset: i64,
) -> Result<Vec<RequestView>, Error> {
    if !READERS.iter().any(|role| caller.is(*role)) {
        audit(
            store,
            caller,
            "list",
            None,
            false,
            Some("role may not see requests".into()),
        )
        .await?;
        return Err(Error::forbidden(
            "only clinicians, coordinators and radiologists see requests",
        ));
    }
    let filter = RequestFilter {
        requester_institution_id: (!inbox).then_some(caller.institution_id),
        supporter_institution_id: inbox.then_some(caller.institution_id),
        states,
        order,
        limit,
        offset,
    };
    let requests = store.requests(&filter).await?;
    audit(
        store,
        caller,
        "list",
        None,
        true,
        Some(format!("{} requests", requests.len())),
    )
    .await?;
    let mut views = Vec::with_capacity(requests.len());
    for r in requests {
        views.push(view(store, r).await?);
    }
    Ok(views)
}

/// The audit log, for administrators.
pub async fn audit_entries(
    store: &Store,
    caller: &User,
    filter: AuditFilter,
) -> Result<Vec<(i64, AuditEntry)>, Error> {
    if !caller.is(Role::Admin) {
        crate::audit::Event::by(caller, "audit", "read")
            .denied()
            .record(store)
            .await?;
        return Err(Error::forbidden("only administrators read the audit log"));
    }
    Ok(store.audit_entries(&filter).await?)
}

/// A consultant's free slots between two China dates.
pub async fn free_slots_of(
    store: &Store,
    clinician_id: i64,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<Slot>, Error> {
    let rules = store.availability(clinician_id).await?;
    let exceptions = store
        .availability_exceptions(clinician_id, from, to)
        .await?;
    let utc = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| t.and_local_timezone(china()).single())
            .map(|t| t.with_timezone(&Utc))
            .ok_or_else(|| anyhow::anyhow!("a date without midnight"))
    };
    let end = to
        .succ_opt()
        .ok_or_else(|| Error::field("to", "too far in the future"))?;
    let booked = store
        .booked_slots(clinician_id, utc(from)?, utc(end)?)
        .await?;
    Ok(free_slots(
        &rules,
        &exceptions,
        &booked,
        from,
        to,
        store.now(),
    ))
}
