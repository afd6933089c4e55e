//! The seed import: every row of a checked [`SeedSet`] in one transaction, keeping rows
//! that exist already, so that a second import adds nothing. Compiled once per backend
//! (see `store/mod.rs`).

use chrono::{DateTime, Utc};

use super::{Db, Pool, SEED_IMPORT_LOCK};
use crate::domain::{PairingStatus, Supporter};
use crate::seeds::{SeedSet, SeedSupported, SeedSupporter};
use crate::store::{ImportCounts, PairingDraft, StoreError};

/// Whether seeds with `digest` were imported.
pub async fn imported(pool: &Pool, digest: &str) -> Result<bool, StoreError> {
    let n = sqlx::query_scalar::<Db, i64>("select count(*) from seed_import where digest = $1")
        .bind(digest)
        .fetch_one(pool)
        .await?;
    Ok(n > 0)
}

/// Imports `set` in one transaction and records `digest`.
#[tracing::instrument(skip_all)]
pub async fn import(
    pool: &Pool,
    set: &SeedSet,
    digest: &str,
    now: DateTime<Utc>,
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    let mut tx = pool.begin_with(super::BEGIN_WRITE).await?;
    sqlx::query::<Db>(SEED_IMPORT_LOCK)
        .execute(&mut *tx)
        .await?;

    let mut institution_ids = Vec::with_capacity(set.institutions.len());
    for inst in &set.institutions {
        let added = sqlx::query::<Db>(
            "insert into institution (name, level, kind, region_path, remote, created_at)
             values ($1, $2, $3, $4, $5, $6) on conflict (region_path, name) do nothing",
        )
        .bind(&inst.name)
        .bind(inst.level.as_str())
        .bind(inst.kind.as_str())
        .bind(inst.region.as_str())
        .bind(inst.remote)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        counts.institutions += added.rows_affected() as i64;
        let id = sqlx::query_scalar::<Db, i64>(
            "select id from institution where region_path = $1 and name = $2",
        )
        .bind(inst.region.as_str())
        .bind(&inst.name)
        .fetch_one(&mut *tx)
        .await?;
        institution_ids.push(id);
    }

    let mut clinician_ids = Vec::with_capacity(set.clinicians.len());
    for c in &set.clinicians {
        let institution_id = institution_ids[c.institution];
        let existing = sqlx::query_scalar::<Db, i64>(
            "select id from clinician where institution_id = $1 and name = $2 order by id limit 1",
        )
        .bind(institution_id)
        .bind(&c.name)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some(id) => id,
            None => {
                counts.clinicians += 1;
                sqlx::query_scalar::<Db, i64>(
                    "insert into clinician (name, sex, institution_id, title, title_rank, specialty, created_at)
                     values ($1, $2, $3, $4, $5, $6, $7) returning id",
                )
                .bind(&c.name)
                .bind(c.sex.as_str())
                .bind(institution_id)
                .bind(&c.title)
                .bind(c.rank.as_str())
                .bind(&c.specialty)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
            }
        };
        clinician_ids.push(id);
    }

    for p in &set.pairings {
        let supporter = match p.supporter {
            SeedSupporter::Institution(i) => Supporter::Institution(institution_ids[i]),
            SeedSupporter::Clinician(i) => Supporter::Clinician(clinician_ids[i]),
        };
        let (supported_institution, supported_region) = match &p.supported {
            SeedSupported::Institution(i) => (Some(institution_ids[*i]), None),
            SeedSupported::Region(r) => (None, Some(r.as_str().to_owned())),
        };
        let draft = PairingDraft {
            supporter,
            supported_institution,
            supported_region,
            services: p.services.to_stored(),
            valid_from: p.valid_from,
            valid_to: p.valid_to,
            status: PairingStatus::Active,
        };
        let added = super::pairings::insert(
            &mut tx,
            &draft,
            Some(&p.key),
            None,
            now,
            Some("imported from seeds/"),
        )
        .await?;
        counts.pairings += i64::from(added.is_some());
    }

    sqlx::query::<Db>(
        "insert into seed_import (digest, imported_at, institutions, clinicians, pairings)
         values ($1, $2, $3, $4, $5) on conflict (digest) do nothing",
    )
    .bind(digest)
    .bind(now)
    .bind(counts.institutions)
    .bind(counts.clinicians)
    .bind(counts.pairings)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(counts)
}

/// Whether `duikou demo` built this installation.
pub async fn is_demo(pool: &Pool) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar::<Db, i64>("select count(*) from demo_installation")
            .fetch_one(pool)
            .await?
            > 0,
    )
}

/// Records that `duikou demo` built this installation (once).
pub async fn mark_demo(pool: &Pool, now: DateTime<Utc>) -> Result<(), StoreError> {
    sqlx::query::<Db>(
        "insert into demo_installation (id, built_at) values (1, $1) on conflict (id) do nothing",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
