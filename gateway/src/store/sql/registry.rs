//! Institutions, clinicians and teams. Compiled once per backend (see `store/mod.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Db, Pool};
use crate::domain::{Clinician, Institution, Pairing, RegionPath, Team};
use crate::store::{
    ClinicianFilter, InstitutionFilter, NewClinician, NewInstitution, NewTeam, StoreError,
};

#[derive(sqlx::FromRow)]
struct InstitutionRow {
    id: i64,
    name: String,
    level: String,
    kind: String,
    region_path: String,
    remote: bool,
}

impl TryFrom<InstitutionRow> for Institution {
    type Error = StoreError;
    fn try_from(r: InstitutionRow) -> Result<Self, StoreError> {
        let corrupt = |e: String| StoreError::Corrupt(format!("institution {}: {e}", r.id));
        Ok(Institution {
            id: r.id,
            level: r.level.parse().map_err(|e| corrupt(format!("{e}")))?,
            kind: r.kind.parse().map_err(|e| corrupt(format!("{e}")))?,
            region: RegionPath::parse(&r.region_path).map_err(corrupt)?,
            name: r.name,
            remote: r.remote,
        })
    }
}

const INSTITUTION: &str = "select id, name, level, kind, region_path, remote from institution";

/// `select 1`.
pub async fn ping(pool: &Pool) -> Result<(), StoreError> {
    sqlx::query::<Db>("select 1").execute(pool).await?;
    Ok(())
}

/// Institutions matching `f`.
#[tracing::instrument(skip_all)]
pub async fn institutions(
    pool: &Pool,
    f: &InstitutionFilter,
) -> Result<Vec<Institution>, StoreError> {
    let sql = format!(
        "{INSTITUTION}
         where ($1 is null or region_path = $1 or substr(region_path, 1, length($1) + 1) = $1 || '/')
           and ($2 is null or level = $2)
           and ($3 is null or kind = $3)
           and ($4 is null or remote = $4)
           and ($5 is null or name like '%' || $5 || '%')
         order by id limit $6 offset $7"
    );
    let rows = sqlx::query_as::<Db, InstitutionRow>(&sql)
        .bind(&f.region)
        .bind(&f.level)
        .bind(&f.kind)
        .bind(f.remote)
        .bind(&f.name)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Institution::try_from).collect()
}

/// One institution.
#[tracing::instrument(skip(pool))]
pub async fn institution(pool: &Pool, id: i64) -> Result<Option<Institution>, StoreError> {
    let row = sqlx::query_as::<Db, InstitutionRow>(&format!("{INSTITUTION} where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(Institution::try_from).transpose()
}

/// Institutions called exactly `name`.
#[tracing::instrument(skip(pool))]
pub async fn institutions_named(pool: &Pool, name: &str) -> Result<Vec<Institution>, StoreError> {
    let rows =
        sqlx::query_as::<Db, InstitutionRow>(&format!("{INSTITUTION} where name = $1 order by id"))
            .bind(name)
            .fetch_all(pool)
            .await?;
    rows.into_iter().map(Institution::try_from).collect()
}

/// Creates an institution; a second one with the same name in the same region conflicts.
#[tracing::instrument(skip_all)]
pub async fn create_institution(
    pool: &Pool,
    new: &NewInstitution,
    now: DateTime<Utc>,
) -> Result<Institution, StoreError> {
    let id: i64 = sqlx::query_scalar::<Db, i64>(
        "insert into institution (name, level, kind, region_path, remote, created_at)
         values ($1, $2, $3, $4, $5, $6) returning id",
    )
    .bind(&new.name)
    .bind(&new.level)
    .bind(&new.kind)
    .bind(&new.region)
    .bind(new.remote)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(|e| StoreError::unique(e, format!("institution {} in {}", new.name, new.region)))?;
    institution(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("inserted institution vanished".into()))
}

/// Replaces an institution's attributes; a name taken in the region conflicts.
#[tracing::instrument(skip_all)]
pub async fn update_institution(
    pool: &Pool,
    id: i64,
    new: &NewInstitution,
) -> Result<Option<Institution>, StoreError> {
    sqlx::query::<Db>(
        "update institution set name = $2, level = $3, kind = $4, region_path = $5, remote = $6
         where id = $1",
    )
    .bind(id)
    .bind(&new.name)
    .bind(&new.level)
    .bind(&new.kind)
    .bind(&new.region)
    .bind(new.remote)
    .execute(pool)
    .await
    .map_err(|e| StoreError::unique(e, format!("institution {} in {}", new.name, new.region)))?;
    institution(pool, id).await
}

#[derive(sqlx::FromRow)]
struct ClinicianRow {
    id: i64,
    name: String,
    sex: Option<String>,
    institution_id: i64,
    title: String,
    title_rank: String,
    specialty: String,
    licence_number: Option<String>,
    practice_since: Option<NaiveDate>,
}

impl TryFrom<ClinicianRow> for Clinician {
    type Error = StoreError;
    fn try_from(r: ClinicianRow) -> Result<Self, StoreError> {
        let corrupt =
            |e: crate::domain::UnknownName| StoreError::Corrupt(format!("clinician {}: {e}", r.id));
        Ok(Clinician {
            id: r.id,
            sex: r
                .sex
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(corrupt)?,
            title_rank: r.title_rank.parse().map_err(corrupt)?,
            name: r.name,
            institution_id: r.institution_id,
            title: r.title,
            specialty: r.specialty,
            licence_number: r.licence_number,
            practice_since: r.practice_since,
        })
    }
}

const CLINICIAN: &str = "select id, name, sex, institution_id, title, title_rank, specialty,
    licence_number, practice_since from clinician";

/// Clinicians matching `f`.
#[tracing::instrument(skip_all)]
pub async fn clinicians(pool: &Pool, f: &ClinicianFilter) -> Result<Vec<Clinician>, StoreError> {
    let ranks = f.ranks.as_ref().map(|r| format!(",{},", r.join(",")));
    let sql = format!(
        "{CLINICIAN}
         where ($1 is null or institution_id = $1)
           and ($2 is null or specialty like '%' || $2 || '%')
           and ($3 is null or $3 like '%,' || title_rank || ',%')
           and ($4 is null or name like '%' || $4 || '%')
         order by id limit $5 offset $6"
    );
    let rows = sqlx::query_as::<Db, ClinicianRow>(&sql)
        .bind(f.institution_id)
        .bind(&f.specialty)
        .bind(ranks)
        .bind(&f.name)
        .bind(f.limit)
        .bind(f.offset)
        .fetch_all(pool)
        .await?;
    rows.into_iter().map(Clinician::try_from).collect()
}

/// One clinician.
#[tracing::instrument(skip(pool))]
pub async fn clinician(pool: &Pool, id: i64) -> Result<Option<Clinician>, StoreError> {
    let row = sqlx::query_as::<Db, ClinicianRow>(&format!("{CLINICIAN} where id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(Clinician::try_from).transpose()
}

async fn institution_exists(pool: &Pool, id: i64, field: &'static str) -> Result<(), StoreError> {
    if institution(pool, id).await?.is_none() {
        return Err(StoreError::Invalid {
            field,
            message: format!("no institution has id {id}"),
        });
    }
    Ok(())
}

/// Creates a clinician; a licence number can be registered once.
#[tracing::instrument(skip_all)]
pub async fn create_clinician(
    pool: &Pool,
    new: &NewClinician,
    now: DateTime<Utc>,
) -> Result<Clinician, StoreError> {
    institution_exists(pool, new.institution_id, "institution_id").await?;
    let id: i64 = sqlx::query_scalar::<Db, i64>(
        "insert into clinician (name, sex, institution_id, title, title_rank, specialty,
             licence_number, practice_since, created_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id",
    )
    .bind(&new.name)
    .bind(&new.sex)
    .bind(new.institution_id)
    .bind(&new.title)
    .bind(&new.title_rank)
    .bind(&new.specialty)
    .bind(&new.licence_number)
    .bind(new.practice_since)
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(|e| StoreError::unique(e, "a clinician with this licence number"))?;
    clinician(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("inserted clinician vanished".into()))
}

/// Changes clinician `id` in one transaction: reads them (locking their row) and every
/// pairing they are the supporter of, asks `decide` for the clinician as they will be,
/// and writes their name, title, rank, specialty, licence number and the day their
/// practice began (their unit and sex stay). When `decide` refuses, nothing is written
/// and its refusal is returned; `None` when there is no such clinician. A licence number
/// can be registered once.
#[tracing::instrument(skip(pool, decide))]
pub async fn change_clinician<E>(
    pool: &Pool,
    id: i64,
    decide: impl FnOnce(Clinician, &[Pairing]) -> Result<Clinician, E>,
) -> Result<Option<Result<Clinician, E>>, StoreError> {
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let row = sqlx::query_as::<Db, ClinicianRow>(&format!(
        "{CLINICIAN} where id = $1{}",
        super::FOR_UPDATE
    ))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(before) = row.map(Clinician::try_from).transpose()? else {
        return Ok(None);
    };
    let supports = super::pairings::supported_by_clinician(&mut tx, id).await?;
    let after = match decide(before, &supports) {
        Ok(after) => after,
        // Dropping the transaction rolls it back.
        Err(refused) => return Ok(Some(Err(refused))),
    };
    sqlx::query::<Db>(
        "update clinician set name = $2, title = $3, title_rank = $4, specialty = $5,
             licence_number = $6, practice_since = $7
         where id = $1",
    )
    .bind(id)
    .bind(&after.name)
    .bind(&after.title)
    .bind(after.title_rank.as_str())
    .bind(&after.specialty)
    .bind(&after.licence_number)
    .bind(after.practice_since)
    .execute(&mut *tx)
    .await
    .map_err(|e| StoreError::unique(e, "a clinician with this licence number"))?;
    let row = sqlx::query_as::<Db, ClinicianRow>(&format!("{CLINICIAN} where id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    let changed = Clinician::try_from(row)?;
    tx.commit().await?;
    Ok(Some(Ok(changed)))
}

#[derive(sqlx::FromRow)]
struct TeamRow {
    id: i64,
    name: String,
    institution_id: i64,
    leader_id: i64,
}

async fn with_members(pool: &Pool, rows: Vec<TeamRow>) -> Result<Vec<Team>, StoreError> {
    let mut teams = Vec::with_capacity(rows.len());
    for r in rows {
        let member_ids = sqlx::query_scalar::<Db, i64>(
            "select clinician_id from team_member where team_id = $1 order by clinician_id",
        )
        .bind(r.id)
        .fetch_all(pool)
        .await?;
        teams.push(Team {
            id: r.id,
            name: r.name,
            institution_id: r.institution_id,
            leader_id: r.leader_id,
            member_ids,
        });
    }
    Ok(teams)
}

/// Teams, optionally of one institution.
#[tracing::instrument(skip(pool))]
pub async fn teams(pool: &Pool, institution_id: Option<i64>) -> Result<Vec<Team>, StoreError> {
    let rows = sqlx::query_as::<Db, TeamRow>(
        "select id, name, institution_id, leader_id from team
         where ($1 is null or institution_id = $1) order by id",
    )
    .bind(institution_id)
    .fetch_all(pool)
    .await?;
    with_members(pool, rows).await
}

/// One team.
#[tracing::instrument(skip(pool))]
pub async fn team(pool: &Pool, id: i64) -> Result<Option<Team>, StoreError> {
    let rows = sqlx::query_as::<Db, TeamRow>(
        "select id, name, institution_id, leader_id from team where id = $1",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(with_members(pool, rows).await?.pop())
}

/// The leader, then the other members of `new`: each must be a clinician of the team's
/// institution.
async fn members_of(pool: &Pool, new: &NewTeam) -> Result<Vec<i64>, StoreError> {
    let mut members = vec![new.leader_id];
    members.extend(
        new.member_ids
            .iter()
            .copied()
            .filter(|m| *m != new.leader_id),
    );
    for (i, m) in members.iter().enumerate() {
        let field = if i == 0 { "leader_id" } else { "member_ids" };
        match clinician(pool, *m).await? {
            Some(c) if c.institution_id == new.institution_id => {}
            Some(_) => {
                return Err(StoreError::Invalid {
                    field,
                    message: format!("clinician {m} belongs to another institution"),
                });
            }
            None => {
                return Err(StoreError::Invalid {
                    field,
                    message: format!("no clinician has id {m}"),
                });
            }
        }
    }
    Ok(members)
}

async fn insert_members(
    tx: &mut sqlx::Transaction<'_, Db>,
    team_id: i64,
    members: &[i64],
) -> Result<(), StoreError> {
    for m in members {
        sqlx::query::<Db>("insert into team_member (team_id, clinician_id) values ($1, $2)")
            .bind(team_id)
            .bind(m)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Creates a team and its memberships in one transaction. The leader and every member
/// must be clinicians of the team's institution.
#[tracing::instrument(skip_all)]
pub async fn create_team(
    pool: &Pool,
    new: &NewTeam,
    now: DateTime<Utc>,
) -> Result<Team, StoreError> {
    institution_exists(pool, new.institution_id, "institution_id").await?;
    let members = members_of(pool, new).await?;
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let id: i64 = sqlx::query_scalar::<Db, i64>(
        "insert into team (name, institution_id, leader_id, created_at) values ($1, $2, $3, $4) returning id",
    )
    .bind(&new.name)
    .bind(new.institution_id)
    .bind(new.leader_id)
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| StoreError::unique(e, format!("team {} of this institution", new.name)))?;
    insert_members(&mut tx, id, &members).await?;
    tx.commit().await?;
    team(pool, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt("inserted team vanished".into()))
}

/// Replaces a team's name, leader and members in one transaction, under the same
/// conditions as [`create_team`].
#[tracing::instrument(skip_all)]
pub async fn update_team(pool: &Pool, id: i64, new: &NewTeam) -> Result<Option<Team>, StoreError> {
    let members = members_of(pool, new).await?;
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    let updated = sqlx::query::<Db>(
        "update team set name = $2, leader_id = $3 where id = $1 and institution_id = $4",
    )
    .bind(id)
    .bind(&new.name)
    .bind(new.leader_id)
    .bind(new.institution_id)
    .execute(&mut *tx)
    .await
    .map_err(|e| StoreError::unique(e, format!("team {} of this institution", new.name)))?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    sqlx::query::<Db>("delete from team_member where team_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_members(&mut tx, id, &members).await?;
    tx.commit().await?;
    team(pool, id).await
}
