//! [`Store`] operations: institutions, clinicians, teams and pairings (`sql/registry.rs`,
//! `sql/pairings.rs`).

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, postgres, sqlite};
use crate::domain::{
    Clinician, Institution, Pairing, PairingStatus, PairingVersion, Service, Supporter, Team,
    TrainingTarget,
};

/// Filters for listing institutions.
#[derive(Debug, Clone, Default)]
pub struct InstitutionFilter {
    /// Institutions in this region or below it.
    pub region: Option<String>,
    /// Level name.
    pub level: Option<String>,
    /// Kind name.
    pub kind: Option<String>,
    /// Remote flag.
    pub remote: Option<bool>,
    /// Part of the name.
    pub name: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Filters for listing clinicians.
#[derive(Debug, Clone, Default)]
pub struct ClinicianFilter {
    /// Unit.
    pub institution_id: Option<i64>,
    /// Part of the specialty.
    pub specialty: Option<String>,
    /// Stored rank names that qualify.
    pub ranks: Option<Vec<String>>,
    /// Part of the name.
    pub name: Option<String>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// Filters for listing pairings.
#[derive(Debug, Clone, Default)]
pub struct PairingFilter {
    /// The supporting side.
    pub supporter: Option<Supporter>,
    /// The supported institution: pairings on it directly or on a region containing it.
    pub supported_institution: Option<(i64, String)>,
    /// A covered service.
    pub service: Option<Service>,
    /// A date inside the period.
    pub date: Option<NaiveDate>,
    /// Page size.
    pub limit: i64,
    /// Rows to skip.
    pub offset: i64,
}

/// A new institution.
#[derive(Debug, Clone)]
pub struct NewInstitution {
    /// Name.
    pub name: String,
    /// Level name.
    pub level: String,
    /// Kind name.
    pub kind: String,
    /// Region path.
    pub region: String,
    /// Remote flag.
    pub remote: bool,
}

/// A new clinician.
#[derive(Debug, Clone)]
pub struct NewClinician {
    /// Name.
    pub name: String,
    /// `M` or `F`.
    pub sex: Option<String>,
    /// Unit.
    pub institution_id: i64,
    /// Title as written.
    pub title: String,
    /// Stored rank name.
    pub title_rank: String,
    /// Specialty.
    pub specialty: String,
    /// Licence number.
    pub licence_number: Option<String>,
    /// The day independent practice began.
    pub practice_since: Option<NaiveDate>,
}

/// A new team.
#[derive(Debug, Clone)]
pub struct NewTeam {
    /// Name.
    pub name: String,
    /// Unit.
    pub institution_id: i64,
    /// Leader, also a member.
    pub leader_id: i64,
    /// Members besides the leader.
    pub member_ids: Vec<i64>,
}

/// The content of a pairing version, as an administrator sets it.
#[derive(Debug, Clone)]
pub struct PairingDraft {
    /// Supporting side.
    pub supporter: Supporter,
    /// The supported institution; set exactly when `supported_region` is not.
    pub supported_institution: Option<i64>,
    /// The supported region; set exactly when `supported_institution` is not.
    pub supported_region: Option<String>,
    /// Stored services.
    pub services: String,
    /// First day.
    pub valid_from: NaiveDate,
    /// Last day.
    pub valid_to: NaiveDate,
    /// Whether it stands or was ended.
    pub status: PairingStatus,
}

/// Who changes a pairing, when and why.
#[derive(Debug, Clone)]
pub struct Change {
    /// The administrator.
    pub by: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: Option<String>,
    /// `changed` or `ended`.
    pub action: &'static str,
}

impl Store {
    /// Institutions matching `filter`, by id.
    pub async fn institutions(
        &self,
        filter: &InstitutionFilter,
    ) -> Result<Vec<Institution>, StoreError> {
        dispatch!(self, registry::institutions(filter))
    }

    /// One institution.
    pub async fn institution(&self, id: i64) -> Result<Option<Institution>, StoreError> {
        dispatch!(self, registry::institution(id))
    }

    /// Institutions with exactly this name.
    pub async fn institutions_named(&self, name: &str) -> Result<Vec<Institution>, StoreError> {
        dispatch!(self, registry::institutions_named(name))
    }

    /// Creates an institution.
    pub async fn create_institution(
        &self,
        new: &NewInstitution,
    ) -> Result<Institution, StoreError> {
        dispatch!(self, registry::create_institution(new, self.now()))
    }

    /// Replaces institution `id`'s name, level, kind, region and remote flag; `None` when
    /// there is no such institution.
    pub async fn update_institution(
        &self,
        id: i64,
        new: &NewInstitution,
    ) -> Result<Option<Institution>, StoreError> {
        dispatch!(self, registry::update_institution(id, new))
    }

    /// Clinicians matching `filter`, by id.
    pub async fn clinicians(&self, filter: &ClinicianFilter) -> Result<Vec<Clinician>, StoreError> {
        dispatch!(self, registry::clinicians(filter))
    }

    /// One clinician.
    pub async fn clinician(&self, id: i64) -> Result<Option<Clinician>, StoreError> {
        dispatch!(self, registry::clinician(id))
    }

    /// Changes clinician `id` in one transaction, as `decide` says from the clinician as
    /// they are and every pairing they are the supporter of, both read in it: their name,
    /// title, rank, specialty, licence number and the day their practice began. Nothing is
    /// written when `decide` refuses; `None` when there is no such clinician.
    pub async fn change_clinician<E>(
        &self,
        id: i64,
        decide: impl FnOnce(Clinician, &[Pairing]) -> Result<Clinician, E>,
    ) -> Result<Option<Result<Clinician, E>>, StoreError> {
        dispatch!(self, registry::change_clinician(id, decide))
    }

    /// Creates a clinician.
    pub async fn create_clinician(&self, new: &NewClinician) -> Result<Clinician, StoreError> {
        dispatch!(self, registry::create_clinician(new, self.now()))
    }

    /// Teams, optionally of one institution.
    pub async fn teams(&self, institution_id: Option<i64>) -> Result<Vec<Team>, StoreError> {
        dispatch!(self, registry::teams(institution_id))
    }

    /// One team.
    pub async fn team(&self, id: i64) -> Result<Option<Team>, StoreError> {
        dispatch!(self, registry::team(id))
    }

    /// Creates a team and its memberships in one transaction.
    pub async fn create_team(&self, new: &NewTeam) -> Result<Team, StoreError> {
        dispatch!(self, registry::create_team(new, self.now()))
    }

    /// Replaces team `id`'s name, leader and members in one transaction; `None` when
    /// there is no such team. `new.institution_id` must be the team's.
    pub async fn update_team(&self, id: i64, new: &NewTeam) -> Result<Option<Team>, StoreError> {
        dispatch!(self, registry::update_team(id, new))
    }

    /// Pairings matching `filter`, by id.
    pub async fn pairings(&self, filter: &PairingFilter) -> Result<Vec<Pairing>, StoreError> {
        dispatch!(self, pairings::pairings(filter))
    }

    /// One pairing.
    pub async fn pairing(&self, id: i64) -> Result<Option<Pairing>, StoreError> {
        dispatch!(self, pairings::pairing(id))
    }

    /// Every version of a pairing, oldest first.
    pub async fn pairing_history(&self, id: i64) -> Result<Vec<PairingVersion>, StoreError> {
        dispatch!(self, pairings::history(id))
    }

    /// The training targets pairing `id` sets for itself, by year.
    pub async fn pairing_targets(&self, id: i64) -> Result<Vec<TrainingTarget>, StoreError> {
        dispatch!(self, pairings::targets(id))
    }

    /// Sets pairing `id`'s training target for `year`, replacing the one it had.
    pub async fn set_pairing_target(
        &self,
        id: i64,
        year: i32,
        trainees: u32,
        hours_each: u32,
        by: i64,
    ) -> Result<(), StoreError> {
        dispatch!(
            self,
            pairings::set_target(id, year, trainees, hours_each, by, self.now())
        )
    }

    /// Creates a pairing and its first version in one transaction.
    pub async fn create_pairing(
        &self,
        draft: &PairingDraft,
        by: i64,
    ) -> Result<Pairing, StoreError> {
        dispatch!(self, pairings::create(draft, by, self.now()))
    }

    /// Replaces version `expected_version` of a pairing with `draft`, keeping the old one
    /// in history. Fails with a conflict when someone changed it meanwhile.
    pub async fn change_pairing(
        &self,
        id: i64,
        expected_version: i32,
        draft: &PairingDraft,
        change: &Change,
    ) -> Result<Pairing, StoreError> {
        dispatch!(self, pairings::change(id, expected_version, draft, change))
    }

    /// Pairings covering `institution_id` (directly, or through a region containing
    /// `region`) for `service` on `date`.
    pub async fn pairings_covering(
        &self,
        institution_id: i64,
        region: &str,
        service: Service,
        date: NaiveDate,
    ) -> Result<Vec<Pairing>, StoreError> {
        dispatch!(
            self,
            pairings::covering(institution_id, region, service, date)
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::domain::Supporter;
    use crate::store::{Db, StoreError};
    use crate::testing::Fixture;

    /// A state the product does not know can only come from a damaged database (the
    /// tables check their states); it is reported as corrupt data, never taken for another.
    #[tokio::test]
    async fn a_row_in_a_state_the_product_does_not_know_is_reported_as_corrupt() {
        let f = Fixture::new().await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        f.pairing(Supporter::Institution(tertiary.id), &county, "consult")
            .await;
        let Db::Sqlite { pool, .. } = f.store.db() else {
            unreachable!("the fixture is on SQLite")
        };
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("pragma ignore_check_constraints = on")
            .execute(&mut *conn)
            .await
            .unwrap();
        sqlx::query("update pairing set status = 'paused'")
            .execute(&mut *conn)
            .await
            .unwrap();
        drop(conn);

        let id = sqlx::query_scalar::<_, i64>("select id from pairing")
            .fetch_one(pool)
            .await
            .unwrap();
        match f.store.pairing(id).await {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("paused"), "{why}"),
            other => panic!("expected corrupt data, got {other:?}"),
        }
    }
}
