//! Pairings and their history. Compiled once per backend (see `store/mod.rs`).
//!
//! `pairing` holds the current version; `pairing_version` holds every version, the current
//! one included, with who made it, when and why (`004`: a pairing is fixed for its period
//! and changes only for a stated reason).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Arguments as _;

use super::{Db, Pool};
use crate::domain::{
    Pairing, PairingVersion, RegionPath, Service, Services, Supported, Supporter, TargetSource,
    TrainingTarget,
};
use crate::store::{Change, PairingDraft, PairingFilter, StoreError};

#[derive(sqlx::FromRow)]
struct PairingRow {
    id: i64,
    version: i32,
    supporter_institution_id: Option<i64>,
    supporter_team_id: Option<i64>,
    supporter_clinician_id: Option<i64>,
    supported_institution_id: Option<i64>,
    supported_region: Option<String>,
    services: String,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    status: String,
}

impl TryFrom<PairingRow> for Pairing {
    type Error = StoreError;
    fn try_from(r: PairingRow) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("pairing {}: {what}", r.id));
        let supporter = Supporter::from_columns(
            r.supporter_institution_id,
            r.supporter_team_id,
            r.supporter_clinician_id,
        )
        .ok_or_else(|| corrupt("not exactly one supporter"))?;
        let supported = match (r.supported_institution_id, &r.supported_region) {
            (Some(id), None) => Supported::Institution(id),
            (None, Some(region)) => {
                Supported::Region(RegionPath::parse(region).map_err(|e| corrupt(&e))?)
            }
            _ => return Err(corrupt("not exactly one supported side")),
        };
        Ok(Pairing {
            id: r.id,
            version: r.version,
            supporter,
            supported,
            services: Services::parse(&r.services).map_err(|e| corrupt(&e.to_string()))?,
            valid_from: r.valid_from,
            valid_to: r.valid_to,
            status: r.status.parse().map_err(|e| corrupt(&format!("{e}")))?,
        })
    }
}

const COLUMNS: &str = "supporter_institution_id, supporter_team_id, supporter_clinician_id,
    supported_institution_id, supported_region, services, valid_from, valid_to, status";

fn select() -> String {
    format!("select id, version, {COLUMNS} from pairing")
}

/// The condition "supported is institution `$n` or a region containing region path `$m`".
fn covers(inst: u8, region: u8) -> String {
    format!(
        "(supported_institution_id = ${inst} or supported_region = ${region}
          or supported_region || '/' = substr(${region}, 1, length(supported_region) + 1))"
    )
}

/// Pairings matching `f`.
#[tracing::instrument(skip_all)]
pub async fn pairings(pool: &Pool, f: &PairingFilter) -> Result<Vec<Pairing>, StoreError> {
    let (si, st, sc) = f.supporter.map(Supporter::columns).unwrap_or_default();
    let (inst, region) = f.supported_institution.clone().unzip();
    let sql = format!(
        "{} where ($1 is null or supporter_institution_id = $1)
           and ($2 is null or supporter_team_id = $2)
           and ($3 is null or supporter_clinician_id = $3)
           and ($4 is null or {})
           and ($6 is null or (',' || services || ',') like '%,' || $6 || ',%')
           and ($7 is null or (valid_from <= $7 and valid_to >= $7))
         order by id limit $8 offset $9",
        select(),
        covers(4, 5)
    );
    let rows = sqlx::query_as::<Db, PairingRow>(&sql)
        .bind(si)
        .bind(st)
        .bind(sc)
        .bind(inst)
        .bind(region)
        .bind(f.service.map(Service::as_str))
        .bind(f.date)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Pairing::try_from).collect()
}

/// One pairing.
#[tracing::instrument(skip(pool))]
pub async fn pairing(pool: &Pool, id: i64) -> Result<Option<Pairing>, StoreError> {
    let row = sqlx::query_as::<Db, PairingRow>(&format!("{} where id = $1", select()))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(Pairing::try_from).transpose()
}

/// Every pairing whose supporter is clinician `id`, read in `tx`, by id.
#[tracing::instrument(skip(tx))]
pub async fn supported_by_clinician(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
) -> Result<Vec<Pairing>, StoreError> {
    let rows = sqlx::query_as::<Db, PairingRow>(&format!(
        "{} where supporter_clinician_id = $1 order by id",
        select()
    ))
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Pairing::try_from).collect()
}

/// Pairings that cover an institution for a service on a date. An ended pairing still
/// covers the days up to its last one.
#[tracing::instrument(skip(pool))]
pub async fn covering(
    pool: &Pool,
    institution_id: i64,
    region: &str,
    service: Service,
    date: NaiveDate,
) -> Result<Vec<Pairing>, StoreError> {
    let sql = format!(
        "{} where valid_from <= $3 and valid_to >= $3
           and (',' || services || ',') like '%,' || $4 || ',%'
           and {}
         order by id",
        select(),
        covers(1, 2)
    );
    let rows = sqlx::query_as::<Db, PairingRow>(&sql)
        .bind(institution_id)
        .bind(region)
        .bind(date)
        .bind(service.as_str())
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Pairing::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    #[sqlx(flatten)]
    pairing: PairingRow,
    action: String,
    changed_by: Option<i64>,
    changed_at: DateTime<Utc>,
    reason: Option<String>,
}

/// Every version of a pairing, oldest first.
#[tracing::instrument(skip(pool))]
pub async fn history(pool: &Pool, id: i64) -> Result<Vec<PairingVersion>, StoreError> {
    let rows = sqlx::query_as::<Db, VersionRow>(&format!(
        "select pairing_id as id, version, {COLUMNS}, action, changed_by, changed_at, reason
         from pairing_version where pairing_id = $1 order by version"
    ))
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(PairingVersion {
                pairing: Pairing::try_from(r.pairing)?,
                action: r.action,
                changed_by: r.changed_by,
                changed_at: r.changed_at,
                reason: r.reason,
            })
        })
        .collect()
}

/// Checks that the ids a draft refers to exist, naming the field that does not.
async fn check_references(pool: &Pool, d: &PairingDraft) -> Result<(), StoreError> {
    let (table, id) = match d.supporter {
        Supporter::Institution(id) => ("institution", id),
        Supporter::Team(id) => ("team", id),
        Supporter::Clinician(id) => ("clinician", id),
    };
    let found =
        sqlx::query_scalar::<Db, i64>(&format!("select count(*) from {table} where id = $1"))
            .bind(id)
            .fetch_one(pool)
            .await?;
    if found == 0 {
        return Err(StoreError::Invalid {
            field: "supporter",
            message: format!("no {table} has id {id}"),
        });
    }
    if let Some(id) = d.supported_institution {
        let found = sqlx::query_scalar::<Db, i64>("select count(*) from institution where id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
        if found == 0 {
            return Err(StoreError::Invalid {
                field: "supported",
                message: format!("no institution has id {id}"),
            });
        }
    }
    Ok(())
}

fn encoding(e: sqlx::error::BoxDynError) -> StoreError {
    StoreError::Db(sqlx::Error::Encode(e))
}

/// Arguments holding the `COLUMNS` of a draft, in order, after any already added.
fn with_draft<'q>(
    mut args: <Db as sqlx::Database>::Arguments<'q>,
    d: &'q PairingDraft,
) -> Result<<Db as sqlx::Database>::Arguments<'q>, StoreError> {
    let (si, st, sc) = d.supporter.columns();
    args.add(si).map_err(encoding)?;
    args.add(st).map_err(encoding)?;
    args.add(sc).map_err(encoding)?;
    args.add(d.supported_institution).map_err(encoding)?;
    args.add(d.supported_region.as_deref()).map_err(encoding)?;
    args.add(d.services.as_str()).map_err(encoding)?;
    args.add(d.valid_from).map_err(encoding)?;
    args.add(d.valid_to).map_err(encoding)?;
    args.add(d.status.as_str()).map_err(encoding)?;
    Ok(args)
}

/// Who made a version, when, why, and what they did.
struct Stamp<'a> {
    action: &'a str,
    by: Option<i64>,
    at: DateTime<Utc>,
    reason: Option<&'a str>,
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, Db>,
    id: i64,
    version: i32,
    d: &PairingDraft,
    stamp: Stamp<'_>,
) -> Result<(), StoreError> {
    let mut args = <Db as sqlx::Database>::Arguments::default();
    args.add(id).map_err(encoding)?;
    args.add(version).map_err(encoding)?;
    args.add(stamp.action).map_err(encoding)?;
    let mut args = with_draft(args, d)?;
    args.add(stamp.by).map_err(encoding)?;
    args.add(stamp.at).map_err(encoding)?;
    args.add(stamp.reason).map_err(encoding)?;
    sqlx::query_with::<Db, _>(
        &format!(
            "insert into pairing_version (pairing_id, version, action, {COLUMNS}, changed_by, changed_at, reason)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ),
        args,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts a pairing row and its first version inside `tx`; `seed_key` marks seeded rows
/// so that a second import skips them. Returns `None` when that key exists already.
pub async fn insert(
    tx: &mut sqlx::Transaction<'_, Db>,
    d: &PairingDraft,
    seed_key: Option<&str>,
    by: Option<i64>,
    at: DateTime<Utc>,
    reason: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let mut args = with_draft(Default::default(), d)?;
    args.add(seed_key).map_err(encoding)?;
    let id = sqlx::query_scalar_with::<Db, i64, _>(
        &format!(
            "insert into pairing (version, {COLUMNS}, seed_key)
             values (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             on conflict (seed_key) do nothing returning id"
        ),
        args,
    )
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = id {
        let stamp = Stamp {
            action: "created",
            by,
            at,
            reason,
        };
        insert_version(tx, id, 1, d, stamp).await?;
    }
    Ok(id)
}

/// Creates a pairing and its first version in one transaction.
#[tracing::instrument(skip_all)]
pub async fn create(
    pool: &Pool,
    d: &PairingDraft,
    by: i64,
    at: DateTime<Utc>,
) -> Result<Pairing, StoreError> {
    check_references(pool, d).await?;
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let id = insert(&mut tx, d, None, Some(by), at, None)
        .await?
        .ok_or_else(|| StoreError::Corrupt("a pairing without seed key conflicted".into()))?;
    tx.commit().await?;
    pairing(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("inserted pairing vanished".into()))
}

/// Replaces the current version, if it is still `expected`, and records the new version
/// with who, when and why, in one transaction.
#[tracing::instrument(skip_all, fields(pairing = id))]
pub async fn change(
    pool: &Pool,
    id: i64,
    expected: i32,
    d: &PairingDraft,
    change: &Change,
) -> Result<Pairing, StoreError> {
    check_references(pool, d).await?;
    let mut args = <Db as sqlx::Database>::Arguments::default();
    args.add(id).map_err(encoding)?;
    args.add(expected).map_err(encoding)?;
    let args = with_draft(args, d)?;
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let updated = sqlx::query_with::<Db, _>(
        "update pairing set version = version + 1,
             supporter_institution_id = $3, supporter_team_id = $4, supporter_clinician_id = $5,
             supported_institution_id = $6, supported_region = $7, services = $8,
             valid_from = $9, valid_to = $10, status = $11
         where id = $1 and version = $2",
        args,
    )
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() != 1 {
        return Err(StoreError::Stale(format!(
            "pairing {id} is no longer at version {expected}"
        )));
    }
    let stamp = Stamp {
        action: change.action,
        by: Some(change.by),
        at: change.at,
        reason: change.reason.as_deref(),
    };
    insert_version(&mut tx, id, expected + 1, d, stamp).await?;
    tx.commit().await?;
    pairing(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("changed pairing vanished".into()))
}

#[derive(sqlx::FromRow)]
struct TargetRow {
    year: i32,
    trainees: i32,
    hours_each: i32,
    set_by: i64,
    set_at: DateTime<Utc>,
}

/// The training targets a pairing sets for itself, by year.
pub async fn targets(pool: &Pool, id: i64) -> Result<Vec<TrainingTarget>, StoreError> {
    let rows = sqlx::query_as::<Db, TargetRow>(
        "select year, trainees, hours_each, set_by, set_at
         from pairing_target where pairing_id = $1 order by year",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| {
            let corrupt = || StoreError::Corrupt(format!("pairing {id}: target of {}", r.year));
            Ok(TrainingTarget {
                year: r.year,
                trainees: u32::try_from(r.trainees).map_err(|_| corrupt())?,
                hours_each: u32::try_from(r.hours_each).map_err(|_| corrupt())?,
                source: TargetSource::Pairing,
                set_by: Some(r.set_by),
                set_at: Some(r.set_at),
            })
        })
        .collect()
}

/// Sets pairing `id`'s training target for `year`, replacing the one it had.
pub async fn set_target(
    pool: &Pool,
    id: i64,
    year: i32,
    trainees: u32,
    hours_each: u32,
    by: i64,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into pairing_target (pairing_id, year, trainees, hours_each, set_by, set_at)
         values ($1, $2, $3, $4, $5, $6)
         on conflict (pairing_id, year) do update set trainees = excluded.trainees,
             hours_each = excluded.hours_each, set_by = excluded.set_by,
             set_at = excluded.set_at",
    )
    .bind(id)
    .bind(year)
    .bind(i64::from(trainees))
    .bind(i64::from(hours_each))
    .bind(by)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}
