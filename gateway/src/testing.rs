//! What the unit tests of the services share: a store on a temporary SQLite file, migrated,
//! and a few lines to add institutions, clinicians, teams, pairings and accounts to it. A
//! service is then tested by calling it, without an HTTP server.

use chrono::{NaiveDate, TimeDelta};

use crate::domain::{Clinician, Institution, PairingStatus, Roles, Supporter, Team, User};
use crate::registry::today_in_china;
use crate::store::{NewClinician, NewInstitution, NewTeam, NewUser, PairingDraft, Store};

/// A migrated store in a directory of its own, removed when dropped.
pub struct Fixture {
    /// The store.
    pub store: Store,
    /// An administrator, who records the pairings.
    pub admin: User,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// An empty store with its administrator, at the health commission.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("duikou.db").display());
        let store = Store::connect(&url, 4).await.expect("the store opens");
        store.migrate().await.expect("migrations apply");
        let commission = institution(
            &store,
            "江门市卫生计生局",
            "administration",
            "administration",
        )
        .await;
        let admin = user(&store, &commission, "admin", None).await;
        Self {
            store,
            admin,
            _dir: dir,
        }
    }

    /// An institution of `level` and `kind` (their stored names).
    pub async fn institution(&self, name: &str, level: &str, kind: &str) -> Institution {
        institution(&self.store, name, level, kind).await
    }

    /// A senior clinician of `institution` with ten years of practice.
    pub async fn clinician(&self, institution: &Institution, name: &str) -> Clinician {
        self.store
            .create_clinician(&NewClinician {
                name: name.into(),
                sex: None,
                institution_id: institution.id,
                title: "主任医师".into(),
                title_rank: "senior".into(),
                specialty: "内科".into(),
                licence_number: Some(format!("11044{:010}", rand::random::<u32>())),
                practice_since: today_in_china().checked_sub_months(chrono::Months::new(120)),
            })
            .await
            .expect("a clinician")
    }

    /// A team of `institution` led by `leader`.
    pub async fn team(&self, institution: &Institution, name: &str, leader: &Clinician) -> Team {
        self.store
            .create_team(&NewTeam {
                name: name.into(),
                institution_id: institution.id,
                leader_id: leader.id,
                member_ids: Vec::new(),
            })
            .await
            .expect("a team")
    }

    /// A pairing of `supporter` with `supported` for `services` (stored names, comma
    /// separated), from a year ago to a year ahead.
    pub async fn pairing(&self, supporter: Supporter, supported: &Institution, services: &str) {
        let today = today_in_china();
        let year = TimeDelta::days(365);
        self.pairing_between(supporter, supported, services, today - year, today + year)
            .await;
    }

    /// A pairing for the days `from` to `to`.
    pub async fn pairing_between(
        &self,
        supporter: Supporter,
        supported: &Institution,
        services: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) {
        self.store
            .create_pairing(
                &PairingDraft {
                    supporter,
                    supported_institution: Some(supported.id),
                    supported_region: None,
                    services: services.into(),
                    valid_from: from,
                    valid_to: to,
                    status: PairingStatus::Active,
                },
                self.admin.id,
            )
            .await
            .expect("a pairing");
    }

    /// An account at `institution` with `roles` (stored names, comma separated).
    pub async fn user(
        &self,
        institution: &Institution,
        roles: &str,
        clinician: Option<&Clinician>,
    ) -> User {
        user(&self.store, institution, roles, clinician).await
    }
}

async fn institution(store: &Store, name: &str, level: &str, kind: &str) -> Institution {
    store
        .create_institution(&NewInstitution {
            name: name.into(),
            level: level.into(),
            kind: kind.into(),
            region: "广东省/江门市/台山市".into(),
            remote: false,
        })
        .await
        .expect("an institution")
}

async fn user(
    store: &Store,
    institution: &Institution,
    roles: &str,
    clinician: Option<&Clinician>,
) -> User {
    let n = rand::random::<u32>();
    store
        .create_user(&NewUser {
            username: format!("user{n}"),
            display_name: format!("user {n}"),
            institution_id: institution.id,
            clinician_id: clinician.map(|c| c.id),
            roles: Roles::parse(roles).expect("known roles"),
            password_hash: String::new(),
            one_time_password: false,
        })
        .await
        .expect("an account")
}
