//! Remote ward rounds (远程查房, `004`): a supporting team and a supported hospital's
//! ward meet on a recurring schedule; each round has its list of patients to see and a
//! note per patient.
//!
//! The rules: the coordinators of either side (or an administrator) schedule rounds, and
//! only with the team that is the ward hospital's designated supporter for ward rounds on
//! every date; the clinicians and coordinators of the two institutions see a round, and
//! each look is audited; the ward's own clinicians put patients on the list; members of
//! the team write the notes. The organisers move a round or cancel it, or the rest of its
//! series, with a reason (`changes`).

mod changes;

pub use changes::{cancel, change};

use chrono::{DateTime, TimeDelta, Utc};

use super::slots::china;
use crate::domain::{Role, Service, Team, User};
use crate::registry::{LinkKind, supporter_chain};
use crate::rules::{Error, Rule};
use crate::store::Store;

/// One round.
#[derive(Debug, Clone)]
pub struct WardRound {
    /// Round id.
    pub id: i64,
    /// The supporting team.
    pub team_id: i64,
    /// The supported hospital.
    pub supported_institution_id: i64,
    /// The ward, e.g. 内科病区.
    pub ward: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// The first round of its weekly series.
    pub series_id: Option<i64>,
    /// The ward's own team, when named: only its members join the round's room from the
    /// ward's side. Unnamed: the clinicians of the supported hospital.
    pub ward_team_id: Option<i64>,
    /// When its organisers cancelled it: its room does not open.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why, in the organisers' words.
    pub cancel_reason: Option<String>,
}

/// A patient to see on a round.
#[derive(Clone)]
pub struct RoundPatient {
    /// Entry id.
    pub id: i64,
    /// The round.
    pub round_id: i64,
    /// Bed.
    pub bed: String,
    /// The patient's name: visible to the two institutions only.
    pub patient_name: String,
    /// What the ward asks about this patient.
    pub question: String,
    /// The team's note.
    pub note: Option<String>,
    /// Who wrote it.
    pub note_by: Option<i64>,
    /// When.
    pub note_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for RoundPatient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RoundPatient {{ id: {}, round_id: {}, .. }}",
            self.id, self.round_id
        )
    }
}

/// A weekly series of rounds to schedule.
#[derive(Debug, Clone)]
pub struct NewRounds {
    /// The supporting team.
    pub team_id: i64,
    /// The supported hospital.
    pub supported_institution_id: i64,
    /// The ward.
    pub ward: String,
    /// The ward's own team (a team of the supported hospital), if named.
    pub ward_team_id: Option<i64>,
    /// The first round's start.
    pub starts_at: DateTime<Utc>,
    /// Minutes, 15 to 480.
    pub duration_minutes: i64,
    /// How many weekly rounds, 1 to 52.
    pub weeks: i64,
}

/// A patient to put on a round's list.
#[derive(Clone)]
pub struct NewPatient {
    /// Bed.
    pub bed: String,
    /// Name.
    pub patient_name: String,
    /// What the ward asks.
    pub question: String,
}

async fn audit(
    store: &Store,
    caller: &User,
    action: &str,
    id: i64,
    allowed: bool,
) -> Result<(), Error> {
    crate::audit::record(store, caller, "ward_round", action, Some(id), allowed, None).await
}

async fn team(store: &Store, field: &str, id: i64) -> Result<Team, Error> {
    store
        .team(id)
        .await?
        .ok_or_else(|| Error::field(field, format!("no team has id {id}")))
}

/// Loads a round for a clinician or coordinator of either side; every look and every
/// refusal is audited as `action`.
async fn open(
    store: &Store,
    caller: &User,
    id: i64,
    action: &str,
) -> Result<(WardRound, Team), Error> {
    let round = store
        .ward_round(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("ward round {id}")))?;
    let t = team(store, "team_id", round.team_id).await?;
    let side = caller.institution_id == round.supported_institution_id
        || caller.institution_id == t.institution_id;
    if !side || !(caller.is(Role::Clinician) || caller.is(Role::Coordinator)) {
        audit(store, caller, action, id, false).await?;
        return Err(Error::refused(
            Rule::WrongInstitution,
            None,
            "only the team's and the ward's institutions take part in a ward round",
        ));
    }
    audit(store, caller, action, id, true).await?;
    Ok((round, t))
}

/// Refuses unless the caller organises the rounds of `team` with the ward of
/// `supported_institution_id`: an administrator, or a coordinator of either side.
fn require_organiser(
    caller: &User,
    team: &Team,
    supported_institution_id: i64,
) -> Result<(), Error> {
    let organiser = caller.is(Role::Admin)
        || (caller.is(Role::Coordinator)
            && (caller.institution_id == team.institution_id
                || caller.institution_id == supported_institution_id));
    if organiser {
        Ok(())
    } else {
        Err(Error::forbidden(
            "the coordinators of either side or an administrator organise ward rounds",
        ))
    }
}

/// Refuses unless `team` is the designated supporter of `supported_institution_id` for
/// ward rounds on the day (in China) of `starts_at`.
async fn require_designated(
    store: &Store,
    team: &Team,
    supported_institution_id: i64,
    starts_at: DateTime<Utc>,
) -> Result<(), Error> {
    let date = starts_at.with_timezone(&china()).date_naive();
    let chain = supporter_chain(store, supported_institution_id, Service::WardRound, date).await?;
    let designated = chain.designated().is_some_and(|l| {
        (l.kind == LinkKind::Team && l.id == team.id)
            || (l.kind == LinkKind::Institution && l.id == team.institution_id)
    });
    if designated {
        return Ok(());
    }
    let who = chain
        .designated()
        .map_or("nobody".to_owned(), |l| l.name.clone());
    Err(Error::refused(
        Rule::NotDesignatedSupporter,
        Some("team_id"),
        format!(
            "on {date} the designated supporter for ward rounds is {who}, not {}",
            team.name
        ),
    ))
}

/// Schedules weekly ward rounds; returns them as stored.
pub async fn schedule(
    store: &Store,
    caller: &User,
    new: &NewRounds,
) -> Result<Vec<WardRound>, Error> {
    let t = team(store, "team_id", new.team_id).await?;
    require_organiser(caller, &t, new.supported_institution_id)?;
    if new.ward.trim().is_empty() {
        return Err(Error::field("ward", "name the ward"));
    }
    if let Some(id) = new.ward_team_id {
        let ward_team = team(store, "ward_team_id", id).await?;
        if ward_team.institution_id != new.supported_institution_id {
            return Err(Error::field(
                "ward_team_id",
                "the ward's team belongs to the supported hospital",
            ));
        }
    }
    if !(15..=480).contains(&new.duration_minutes) {
        return Err(Error::field("duration_minutes", "15 to 480 minutes"));
    }
    if !(1..=52).contains(&new.weeks) {
        return Err(Error::field("weeks", "1 to 52 weekly rounds"));
    }
    let mut rounds = Vec::new();
    for week in 0..new.weeks {
        let starts_at = new.starts_at + TimeDelta::weeks(week);
        require_designated(store, &t, new.supported_institution_id, starts_at).await?;
        rounds.push(WardRound {
            id: 0,
            team_id: t.id,
            supported_institution_id: new.supported_institution_id,
            ward: new.ward.trim().to_owned(),
            starts_at,
            ends_at: starts_at + TimeDelta::minutes(new.duration_minutes),
            series_id: None,
            ward_team_id: new.ward_team_id,
            cancelled_at: None,
            cancel_reason: None,
        });
    }
    let ids = store.create_ward_rounds(&rounds, caller.id).await?;
    let mut created = Vec::new();
    for id in ids {
        created.extend(store.ward_round(id).await?);
    }
    Ok(created)
}

/// The rounds between `from` and `to` that an institution takes part in: as the ward, or
/// through its teams; cancelled ones are listed as cancelled. The caller's own
/// institution (when `institution_id` is `None` or names it) for its clinicians and
/// coordinators; any institution for an administrator.
pub async fn list(
    store: &Store,
    caller: &User,
    institution_id: Option<i64>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<WardRound>, Error> {
    let institution = institution_id.unwrap_or(caller.institution_id);
    let allowed = caller.is(Role::Admin)
        || (institution == caller.institution_id
            && (caller.is(Role::Clinician) || caller.is(Role::Coordinator)));
    if !allowed {
        return Err(Error::forbidden(
            "an institution's clinicians and coordinators, or an administrator, see its ward rounds",
        ));
    }
    let teams: Vec<String> = store
        .teams(Some(institution))
        .await?
        .iter()
        .map(|t| t.id.to_string())
        .collect();
    Ok(store
        .ward_rounds(
            &format!(",{institution},"),
            &format!(",{},", teams.join(",")),
            from,
            to,
        )
        .await?)
}

/// One round with its patients, for either side; audited.
pub async fn read(
    store: &Store,
    caller: &User,
    id: i64,
) -> Result<(WardRound, Vec<RoundPatient>), Error> {
    let (round, _) = open(store, caller, id, "read").await?;
    Ok((round, store.round_patients(id).await?))
}

/// Puts a patient on a round's list (the ward hospital's clinicians); the list after.
pub async fn add_patient(
    store: &Store,
    caller: &User,
    id: i64,
    patient: &NewPatient,
) -> Result<Vec<RoundPatient>, Error> {
    let (round, _) = open(store, caller, id, "add_patient").await?;
    if caller.institution_id != round.supported_institution_id {
        return Err(Error::forbidden(
            "the ward's own clinicians put patients on the list",
        ));
    }
    for (field, value) in [
        ("bed", &patient.bed),
        ("patient_name", &patient.patient_name),
        ("question", &patient.question),
    ] {
        if value.trim().is_empty() {
            return Err(Error::field(field, "required"));
        }
    }
    store
        .add_round_patient(
            id,
            patient.bed.trim(),
            patient.patient_name.trim(),
            patient.question.trim(),
        )
        .await?;
    Ok(store.round_patients(id).await?)
}

/// Writes the team's note on a patient (members of the round's team); the list after.
pub async fn note_patient(
    store: &Store,
    caller: &User,
    id: i64,
    patient: i64,
    note: &str,
) -> Result<Vec<RoundPatient>, Error> {
    let (_, t) = open(store, caller, id, "note_patient").await?;
    if !caller
        .clinician_id
        .is_some_and(|c| t.member_ids.contains(&c))
    {
        return Err(Error::forbidden(
            "members of the round's team write the notes",
        ));
    }
    if note.trim().is_empty() {
        return Err(Error::field("note", "required"));
    }
    if !store
        .note_round_patient(id, patient, note.trim(), caller.id)
        .await?
    {
        return Err(Error::NotFound(format!("patient {patient} on round {id}")));
    }
    Ok(store.round_patients(id).await?)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::domain::{Institution, Supporter};
    use crate::store::AuditFilter;
    use crate::testing::Fixture;

    /// A tertiary hospital whose team is the county hospital's designated supporter for
    /// ward rounds, a second team of the same hospital that is not, and a third hospital.
    pub(in crate::booking::rounds) struct Rounds {
        pub(in crate::booking::rounds) f: Fixture,
        pub(in crate::booking::rounds) county: Institution,
        pub(in crate::booking::rounds) designated: Team,
        other_team: Team,
        pub(in crate::booking::rounds) ward_clinician: User,
        pub(in crate::booking::rounds) ward_coordinator: User,
        pub(in crate::booking::rounds) team_leader: User,
        pub(in crate::booking::rounds) outsider: User,
    }

    pub(in crate::booking::rounds) async fn rounds() -> Rounds {
        let f = Fixture::new().await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let third = f.institution("开平市中心医院", "county", "general").await;
        let leader = f.clinician(&tertiary, "黄医生").await;
        let other_leader = f.clinician(&tertiary, "李医生").await;
        let designated = f.team(&tertiary, "心内科专家组", &leader).await;
        let other_team = f.team(&tertiary, "呼吸科专家组", &other_leader).await;
        f.pairing(Supporter::Team(designated.id), &county, "ward_round")
            .await;
        let ward_doctor = f.clinician(&county, "陈医生").await;
        let outsider_doctor = f.clinician(&third, "周医生").await;
        Rounds {
            ward_clinician: f.user(&county, "clinician", Some(&ward_doctor)).await,
            ward_coordinator: f.user(&county, "coordinator", None).await,
            team_leader: f.user(&tertiary, "clinician", Some(&leader)).await,
            outsider: f.user(&third, "clinician", Some(&outsider_doctor)).await,
            f,
            county,
            designated,
            other_team,
        }
    }

    pub(in crate::booking::rounds) fn weekly(r: &Rounds, team: &Team) -> NewRounds {
        NewRounds {
            team_id: team.id,
            supported_institution_id: r.county.id,
            ward: "内科病区".into(),
            ward_team_id: None,
            starts_at: Utc::now() + TimeDelta::days(1),
            duration_minutes: 60,
            weeks: 4,
        }
    }

    pub(in crate::booking::rounds) fn field_of(e: &Error) -> Option<&str> {
        match e {
            Error::Invalid { field, .. } => Some(field),
            Error::Refused { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    #[tokio::test]
    async fn only_the_designated_team_is_scheduled_and_only_by_an_organiser() {
        let r = rounds().await;
        let made = schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.designated))
            .await
            .unwrap();
        assert_eq!(made.len(), 4);
        assert!(made.iter().all(|w| w.team_id == r.designated.id));
        assert_eq!(made[1].starts_at - made[0].starts_at, TimeDelta::weeks(1));

        let refused = schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.other_team))
            .await
            .unwrap_err();
        assert_eq!(refused.rule(), Some(Rule::NotDesignatedSupporter));
        assert_eq!(field_of(&refused), Some("team_id"));
        assert!(refused.to_string().contains("心内科专家组"), "{refused}");

        // A clinician is no organiser, nor is another hospital's coordinator.
        let new = weekly(&r, &r.designated);
        let by_clinician = schedule(&r.f.store, &r.ward_clinician, &new).await;
        assert!(matches!(by_clinician, Err(Error::Forbidden(_))));
        let third = r.f.institution("恩平市人民医院", "county", "general").await;
        let stranger = r.f.user(&third, "coordinator", None).await;
        let by_stranger = schedule(&r.f.store, &stranger, &new).await;
        assert!(matches!(by_stranger, Err(Error::Forbidden(_))));
        // The administrator is.
        schedule(&r.f.store, &r.f.admin, &weekly(&r, &r.designated))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_round_outside_the_pairing_is_refused_and_nothing_is_scheduled() {
        let r = rounds().await;
        // The rounds of a year starting in 200 days run past the pairing's last day.
        let mut long = weekly(&r, &r.designated);
        long.weeks = 52;
        long.starts_at = Utc::now() + TimeDelta::days(200);
        let refused = schedule(&r.f.store, &r.ward_coordinator, &long)
            .await
            .unwrap_err();
        assert_eq!(refused.rule(), Some(Rule::NotDesignatedSupporter));
        let listed = list(
            &r.f.store,
            &r.ward_clinician,
            None,
            Utc::now(),
            Utc::now() + TimeDelta::days(800),
        )
        .await
        .unwrap();
        assert!(listed.is_empty(), "half a series was scheduled");
    }

    #[tokio::test]
    async fn bad_input_names_its_field() {
        let r = rounds().await;
        let nurse_lead = r.f.clinician(&r.county, "吴医生").await;
        let other_side = r.f.team(&r.county, "病区组", &nurse_lead).await;
        type Spoil<'a> = Box<dyn Fn(&mut NewRounds) + 'a>;
        let cases: [(&str, Spoil); 5] = [
            ("ward", Box::new(|n| n.ward = "  ".into())),
            ("duration_minutes", Box::new(|n| n.duration_minutes = 10)),
            ("weeks", Box::new(|n| n.weeks = 53)),
            ("team_id", Box::new(|n| n.team_id = 9999)),
            (
                "ward_team_id",
                Box::new(|n| n.ward_team_id = Some(r.designated.id)),
            ),
        ];
        for (field, spoil) in cases {
            let mut new = weekly(&r, &r.designated);
            spoil(&mut new);
            let e = schedule(&r.f.store, &r.ward_coordinator, &new)
                .await
                .unwrap_err();
            assert_eq!(field_of(&e), Some(field), "{e}");
        }
        // A ward team of the ward's own hospital is fine.
        let mut new = weekly(&r, &r.designated);
        new.ward_team_id = Some(other_side.id);
        schedule(&r.f.store, &r.ward_coordinator, &new)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_two_sides_see_a_round_and_its_patients_and_every_look_is_audited() {
        let r = rounds().await;
        let id = schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.designated))
            .await
            .unwrap()[0]
            .id;
        let patient = NewPatient {
            bed: "12床".into(),
            patient_name: "王某某".into(),
            question: "心衰加重，调整用药？".into(),
        };
        // The team does not put patients on the ward's list.
        let by_team = add_patient(&r.f.store, &r.team_leader, id, &patient).await;
        assert!(matches!(by_team, Err(Error::Forbidden(_))));
        let listed = add_patient(&r.f.store, &r.ward_clinician, id, &patient)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        let mut blank = patient.clone();
        blank.question = " ".into();
        let e = add_patient(&r.f.store, &r.ward_clinician, id, &blank)
            .await
            .unwrap_err();
        assert_eq!(field_of(&e), Some("question"));

        // The ward does not write the team's notes; the team's leader does.
        let p = listed[0].id;
        let by_ward = note_patient(&r.f.store, &r.ward_clinician, id, p, "加量").await;
        assert!(matches!(by_ward, Err(Error::Forbidden(_))));
        let noted = note_patient(&r.f.store, &r.team_leader, id, p, "利尿剂加量，三日后复查")
            .await
            .unwrap();
        assert_eq!(noted[0].note.as_deref(), Some("利尿剂加量，三日后复查"));
        let missing = note_patient(&r.f.store, &r.team_leader, id, p + 100, "x").await;
        assert!(matches!(missing, Err(Error::NotFound(_))));

        let (round, patients) = read(&r.f.store, &r.team_leader, id).await.unwrap();
        assert_eq!((round.id, patients.len()), (id, 1));
        // A third hospital's clinician is refused, and the refusal is audited.
        let e = read(&r.f.store, &r.outsider, id).await.unwrap_err();
        assert_eq!(e.rule(), Some(Rule::WrongInstitution));
        let audited =
            r.f.store
                .audit_entries(&AuditFilter {
                    object_kind: Some("ward_round".into()),
                    object_id: Some(id),
                    limit: 100,
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
        let refused: Vec<_> = audited
            .iter()
            .filter(|(_, a)| a.outcome != crate::store::Outcome::Allowed)
            .collect();
        assert_eq!(refused.len(), 1, "{audited:?}");
        assert_eq!(refused[0].1.user_id, Some(r.outsider.id));
        // Each call of the two sides opened the round, and that look is audited as
        // allowed (what followed may still have been refused): three adds, three notes,
        // a read.
        assert_eq!(audited.len() - refused.len(), 7, "{audited:?}");
    }

    #[tokio::test]
    async fn only_clinicians_and_coordinators_list_rounds() {
        let r = rounds().await;
        let trainee = r.f.user(&r.county, "trainee", None).await;
        let listed = list(&r.f.store, &trainee, None, Utc::now(), Utc::now()).await;
        assert!(matches!(listed, Err(Error::Forbidden(_))));
        schedule(&r.f.store, &r.ward_coordinator, &weekly(&r, &r.designated))
            .await
            .unwrap();
        let end = Utc::now() + TimeDelta::days(60);
        for who in [&r.ward_clinician, &r.ward_coordinator, &r.team_leader] {
            assert_eq!(
                list(&r.f.store, who, None, Utc::now(), end)
                    .await
                    .unwrap()
                    .len(),
                4
            );
        }
        assert!(
            list(&r.f.store, &r.outsider, None, Utc::now(), end)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
