//! Requests, their steps and opinions. Compiled once per backend (see `store/mod.rs`).
//! Every change of a request is one transaction that checks the version the caller saw,
//! changes the row and records the step.

use chrono::{DateTime, Utc};

use super::{Db, Pool};
use crate::booking::{ConsultRequest, Opinion, RequestEvent, RequestOrder, Signer};
use crate::domain::Supporter;
use crate::store::{
    NewRequest, OpinionChange, RequestFilter, RequestUpdate, StepRecord, StoreError,
};

#[derive(sqlx::FromRow)]
struct RequestRow {
    id: i64,
    kind: String,
    state: String,
    version: i32,
    requester_user_id: i64,
    requester_institution_id: i64,
    pairing_id: i64,
    supporter_kind: String,
    supporter_id: i64,
    supporter_institution_id: i64,
    urgency: String,
    remote: bool,
    content: String,
    consultant_id: Option<i64>,
    decline_code: Option<String>,
    decline_text: Option<String>,
    scheduled_start: Option<DateTime<Utc>>,
    scheduled_end: Option<DateTime<Utc>>,
    decision_due_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    submitted_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RequestRow> for ConsultRequest {
    type Error = StoreError;
    fn try_from(r: RequestRow) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("request {}: {what}", r.id));
        let supporter = match r.supporter_kind.as_str() {
            "institution" => Supporter::Institution(r.supporter_id),
            "team" => Supporter::Team(r.supporter_id),
            "clinician" => Supporter::Clinician(r.supporter_id),
            other => return Err(corrupt(format!("supporter kind {other}"))),
        };
        Ok(ConsultRequest {
            id: r.id,
            kind: r.kind.parse().map_err(|e| corrupt(format!("{e}")))?,
            state: r.state.parse().map_err(|e| corrupt(format!("{e}")))?,
            version: r.version,
            requester_user_id: r.requester_user_id,
            requester_institution_id: r.requester_institution_id,
            pairing_id: r.pairing_id,
            supporter,
            supporter_institution_id: r.supporter_institution_id,
            urgency: r.urgency.parse().map_err(|e| corrupt(format!("{e}")))?,
            remote: r.remote,
            content: serde_json::from_str(&r.content)
                .map_err(|e| corrupt(format!("content: {e}")))?,
            consultant_id: r.consultant_id,
            decline_code: r.decline_code,
            decline_text: r.decline_text,
            scheduled_start: r.scheduled_start,
            scheduled_end: r.scheduled_end,
            decision_due_at: r.decision_due_at,
            created_at: r.created_at,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
        })
    }
}

const REQUEST: &str =
    "select id, kind, state, version, requester_user_id, requester_institution_id,
    pairing_id, supporter_kind, supporter_id, supporter_institution_id, urgency, remote, content,
    consultant_id, decline_code, decline_text, scheduled_start, scheduled_end, decision_due_at,
    created_at, submitted_at, updated_at from consult_request";

fn supporter_columns(s: Supporter) -> (&'static str, i64) {
    match s {
        Supporter::Institution(id) => ("institution", id),
        Supporter::Team(id) => ("team", id),
        Supporter::Clinician(id) => ("clinician", id),
    }
}

async fn record_step(
    tx: &mut sqlx::Transaction<'_, Db>,
    request_id: i64,
    step: &StepRecord,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into request_event (request_id, from_state, to_state, actor_user_id, at, note)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(request_id)
    .bind(step.from.map(|s| s.as_str()))
    .bind(step.to.as_str())
    .bind(step.actor)
    .bind(step.at)
    .bind(&step.note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Creates a draft and records its creation.
#[tracing::instrument(skip_all)]
pub async fn create(pool: &Pool, new: &NewRequest, step: &StepRecord) -> Result<i64, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let id = insert(&mut tx, new, step).await?;
    tx.commit().await?;
    Ok(id)
}

/// Creates a draft and takes its first step in the same transaction: `then` says what the
/// step changes, given the draft as inserted.
#[tracing::instrument(skip_all)]
pub async fn create_then(
    pool: &Pool,
    new: &NewRequest,
    step: &StepRecord,
    then: &crate::store::FirstStep<'_>,
) -> Result<i64, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let id = insert(&mut tx, new, step).await?;
    let row = sqlx::query_as::<Db, RequestRow>(&format!("{REQUEST} where id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let created = ConsultRequest::try_from(row)?;
    let (update, record) = then(&created);
    update_in(&mut tx, id, created.version, &update, Some(&record), None).await?;
    tx.commit().await?;
    Ok(id)
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, Db>,
    new: &NewRequest,
    step: &StepRecord,
) -> Result<i64, StoreError> {
    let (supporter_kind, supporter_id) = supporter_columns(new.supporter);
    let id = sqlx::query_scalar::<Db, i64>(
        "insert into consult_request (kind, state, version, requester_user_id, requester_institution_id,
             pairing_id, supporter_kind, supporter_id, supporter_institution_id, urgency, remote, content,
             created_at, updated_at)
         values ($1, $2, 1, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) returning id",
    )
    .bind(new.kind.as_str())
    .bind(step.to.as_str())
    .bind(new.requester_user_id)
    .bind(new.requester_institution_id)
    .bind(new.pairing_id)
    .bind(supporter_kind)
    .bind(supporter_id)
    .bind(new.supporter_institution_id)
    .bind(new.urgency.as_str())
    .bind(new.remote)
    .bind(&new.content)
    .bind(step.at)
    .fetch_one(&mut **tx)
    .await?;
    record_step(tx, id, step).await?;
    Ok(id)
}

/// One request.
#[tracing::instrument(skip(pool))]
pub async fn request(pool: &Pool, id: i64) -> Result<Option<ConsultRequest>, StoreError> {
    let row = sqlx::query_as::<Db, RequestRow>(&format!("{REQUEST} where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(ConsultRequest::try_from).transpose()
}

/// Requests of a requesting or a supporting institution, in the filter's order: by
/// priority, the order consultants' time is given (urgent first, then remote institutions,
/// `000`: remote stations are served first, then first come), or newest first.
#[tracing::instrument(skip_all)]
pub async fn requests(pool: &Pool, f: &RequestFilter) -> Result<Vec<ConsultRequest>, StoreError> {
    // One of two fixed clauses, never text from the caller. The id breaks ties of equal
    // times so that pages neither repeat nor skip a request.
    let order = match f.order {
        RequestOrder::Priority => {
            "case when urgency = 'urgent' then 0 else 1 end,
             case when remote then 0 else 1 end,
             coalesce(submitted_at, created_at), id"
        }
        // A draft submitted late is new to its supporter, however long ago it was begun.
        RequestOrder::Newest => "coalesce(submitted_at, created_at) desc, id desc",
    };
    let states = f.states.as_ref().map(|s| {
        format!(
            ",{},",
            s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
        )
    });
    let rows = sqlx::query_as::<Db, RequestRow>(&format!(
        "{REQUEST}
         where ($1 is null or requester_institution_id = $1)
           and ($2 is null or (supporter_institution_id = $2 and state <> 'draft'))
           and ($3 is null or $3 like '%,' || state || ',%')
         order by {order}
         limit $4 offset $5"
    ))
    .bind(f.requester_institution_id)
    .bind(f.supporter_institution_id)
    .bind(states)
    .bind(f.limit)
    .bind(f.offset)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ConsultRequest::try_from).collect()
}

/// Applies `update` if the request is still at `expected` version, records the step and
/// carries out the opinion change, all in one transaction.
#[tracing::instrument(skip_all, fields(request = id))]
pub async fn update(
    pool: &Pool,
    id: i64,
    expected: i32,
    u: &RequestUpdate,
    step: Option<&StepRecord>,
    opinion: Option<&OpinionChange>,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    update_in(&mut tx, id, expected, u, step, opinion).await?;
    tx.commit().await?;
    Ok(())
}

async fn update_in(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
    expected: i32,
    u: &RequestUpdate,
    step: Option<&StepRecord>,
    opinion: Option<&OpinionChange>,
) -> Result<(), StoreError> {
    let (supporter_kind, supporter_id) = u.supporter.map(supporter_columns).unzip();
    let changed = sqlx::query::<Db>(
        "update consult_request set version = version + 1, updated_at = $3,
             state = coalesce($4, state),
             content = coalesce($5, content),
             urgency = coalesce($6, urgency),
             pairing_id = coalesce($7, pairing_id),
             supporter_kind = coalesce($8, supporter_kind),
             supporter_id = coalesce($9, supporter_id),
             supporter_institution_id = coalesce($10, supporter_institution_id),
             consultant_id = coalesce($11, consultant_id),
             decline_code = coalesce($12, decline_code),
             decline_text = coalesce($13, decline_text),
             scheduled_start = coalesce($14, scheduled_start),
             scheduled_end = coalesce($15, scheduled_end),
             decision_due_at = coalesce($16, decision_due_at),
             submitted_at = coalesce($17, submitted_at)
         where id = $1 and version = $2",
    )
    .bind(id)
    .bind(expected)
    .bind(u.at)
    .bind(u.state.map(|s| s.as_str()))
    .bind(&u.content)
    .bind(u.urgency.map(|s| s.as_str()))
    .bind(u.pairing_id)
    .bind(supporter_kind)
    .bind(supporter_id)
    .bind(u.supporter_institution_id)
    .bind(u.consultant_id)
    .bind(&u.decline_code)
    .bind(&u.decline_text)
    .bind(u.scheduled_start)
    .bind(u.scheduled_end)
    .bind(u.decision_due_at)
    .bind(u.submitted_at)
    .execute(&mut **tx)
    .await?;
    if changed.rows_affected() != 1 {
        return Err(StoreError::Stale(format!(
            "request {id} changed since version {expected}; reload it"
        )));
    }
    if let Some((clinician, start, end)) = u.book_slot {
        // A new time replaces the request's earlier booking.
        sqlx::query::<Db>("delete from slot_booking where request_id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await?;
        // The unique key (clinician, start) lets exactly one of two concurrent bookings in.
        sqlx::query::<Db>(
            "insert into slot_booking (clinician_id, start_at, end_at, request_id, created_at)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(clinician)
        .bind(start)
        .bind(end)
        .bind(id)
        .bind(u.at)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::unique(e, "that slot"))?;
    }
    if let Some(step) = step {
        record_step(tx, id, step).await?;
    }
    super::outbox::enqueue(tx, &u.outbox, u.at).await?;
    super::notifications::write(tx, &u.people, u.at).await?;
    match opinion {
        None => {}
        Some(OpinionChange::Draft {
            consultant_id,
            author,
            body,
            amends_id,
        }) => {
            let existing = sqlx::query_scalar::<Db, i64>(
                "select id from opinion where request_id = $1 and status = 'draft'",
            )
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            if let Some(draft) = existing {
                sqlx::query::<Db>("update opinion set body = $2, author_user_id = $3 where id = $1 and status = 'draft'")
                    .bind(draft)
                    .bind(body)
                    .bind(author)
                    .execute(&mut **tx)
                    .await?;
            } else {
                sqlx::query::<Db>(
                    "insert into opinion (request_id, version, amends_id, consultant_id, author_user_id, body, status, created_at)
                     values ($1, (select coalesce(max(version), 0) + 1 from opinion where request_id = $1),
                             $2, $3, $4, $5, 'draft', $6)",
                )
                .bind(id)
                .bind(amends_id)
                .bind(consultant_id)
                .bind(author)
                .bind(body)
                .bind(u.at)
                .execute(&mut **tx)
                .await?;
            }
        }
        Some(OpinionChange::Sign { opinion_id, signer }) => {
            let signed = sqlx::query::<Db>(
                "update opinion set status = 'signed', signed_at = $3,
                    signer_name = $4, signer_title = $5, signer_institution = $6
                 where id = $1 and request_id = $2 and status = 'draft'",
            )
            .bind(opinion_id)
            .bind(id)
            .bind(u.at)
            .bind(&signer.name)
            .bind(&signer.title)
            .bind(&signer.institution)
            .execute(&mut **tx)
            .await?;
            if signed.rows_affected() != 1 {
                return Err(StoreError::Stale(format!(
                    "opinion {opinion_id} is not a draft of request {id}"
                )));
            }
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EventRow {
    from_state: Option<String>,
    to_state: String,
    actor_user_id: Option<i64>,
    at: DateTime<Utc>,
    note: Option<String>,
}

/// The steps of a request, in order.
pub async fn events(pool: &Pool, id: i64) -> Result<Vec<RequestEvent>, StoreError> {
    let rows = sqlx::query_as::<Db, EventRow>(
        "select from_state, to_state, actor_user_id, at, note from request_event where request_id = $1 order by id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let corrupt =
        |e: crate::domain::UnknownName| StoreError::Corrupt(format!("request {id} event: {e}"));
    rows.into_iter()
        .map(|r| {
            Ok(RequestEvent {
                from_state: r
                    .from_state
                    .as_deref()
                    .map(str::parse)
                    .transpose()
                    .map_err(corrupt)?,
                to_state: r.to_state.parse().map_err(corrupt)?,
                actor_user_id: r.actor_user_id,
                at: r.at,
                note: r.note,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct OpinionRow {
    id: i64,
    version: i32,
    amends_id: Option<i64>,
    consultant_id: i64,
    body: String,
    status: String,
    created_at: DateTime<Utc>,
    signed_at: Option<DateTime<Utc>>,
    signer_name: Option<String>,
    signer_title: Option<String>,
    signer_institution: Option<String>,
}

/// Every opinion version of a request, drafts included; callers filter for the reader.
pub async fn opinions(pool: &Pool, request_id: i64) -> Result<Vec<Opinion>, StoreError> {
    let rows = sqlx::query_as::<Db, OpinionRow>(
        "select id, version, amends_id, consultant_id, body, status, created_at, signed_at,
                signer_name, signer_title, signer_institution
         from opinion where request_id = $1 order by version",
    )
    .bind(request_id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Opinion {
                id: r.id,
                version: r.version,
                amends_id: r.amends_id,
                consultant_id: r.consultant_id,
                body: r.body,
                status: r
                    .status
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("opinion {}: {e}", r.id)))?,
                created_at: r.created_at,
                signed_at: r.signed_at,
                signer: match (r.signer_name, r.signer_title, r.signer_institution) {
                    (Some(name), Some(title), Some(institution)) => Some(Signer {
                        name,
                        title,
                        institution,
                    }),
                    _ => None,
                },
            })
        })
        .collect()
}
