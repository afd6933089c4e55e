//! Creating, changing and ending pairings. `004`: the designated pairing is fixed for its
//! whole period and changes only for a stated special reason; only an administrator
//! changes it, and every version stays in history.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{require_admin, today_in_china};

use crate::config::ProgramConfig;
use crate::domain::{
    Clinician, Institution, Kind, Level, Pairing, PairingStatus, Services, Standing, Supported,
    Supporter, TargetSource, TitleRank, TrainingTarget, User,
};
use crate::rules::{Error, Rule};
use crate::store::{Change, PairingDraft, PairingFilter, Store};

/// A pairing as an administrator creates it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingInput {
    /// `{"kind": "institution" | "team" | "clinician", "id": 7}`.
    pub supporter: Supporter,
    /// `{"kind": "institution", "value": 12}` or `{"kind": "region", "value": "广东省/江门市/台山市"}`.
    pub supported: Supported,
    /// Services covered, at least one.
    #[schema(value_type = Vec<crate::domain::Service>)]
    pub services: Services,
    /// First day.
    pub valid_from: NaiveDate,
    /// Last day, inclusive.
    pub valid_to: NaiveDate,
}

/// A change to a pairing: any field left out keeps its value.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingChange {
    /// The version the administrator saw; the change is refused if it is no longer current.
    pub version: Option<i32>,
    /// New supporting side.
    pub supporter: Option<Supporter>,
    /// New supported side.
    pub supported: Option<Supported>,
    /// New services.
    #[schema(value_type = Option<Vec<crate::domain::Service>>)]
    pub services: Option<Services>,
    /// New first day.
    pub valid_from: Option<NaiveDate>,
    /// New last day.
    pub valid_to: Option<NaiveDate>,
    /// Why; required once the period has begun.
    pub reason: Option<String>,
}

/// Ending a pairing before its period is over.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PairingEnd {
    /// The last day it applies, today (in China) or later; today when left out.
    pub last_day: Option<NaiveDate>,
    /// Why; always required.
    pub reason: Option<String>,
}

fn draft(
    supporter: Supporter,
    supported: Supported,
    services: &Services,
    valid_from: NaiveDate,
    valid_to: NaiveDate,
    status: PairingStatus,
) -> Result<PairingDraft, Error> {
    if valid_to < valid_from {
        return Err(Error::field(
            "valid_to",
            format!("{valid_to} is before valid_from {valid_from}"),
        ));
    }
    let (supported_institution, supported_region) = match supported {
        Supported::Institution(id) => (Some(id), None),
        Supported::Region(r) => (None, Some(r.as_str().to_owned())),
    };
    Ok(PairingDraft {
        supporter,
        supported_institution,
        supported_region,
        services: services.to_stored(),
        valid_from,
        valid_to,
        status,
    })
}

/// `004`: tertiary general hospitals support county general hospitals and tertiary TCM
/// hospitals support county TCM hospitals. Applies to a tertiary institution paired with
/// one county-level hospital; region-wide pairings (a whole county system) are exempt.
async fn like_supports_like(
    store: &Store,
    supporter: Supporter,
    supported: &Supported,
) -> Result<(), Error> {
    let (Supporter::Institution(s), Supported::Institution(t)) = (supporter, supported) else {
        return Ok(());
    };
    let (Some(s), Some(t)) = (store.institution(s).await?, store.institution(*t).await?) else {
        // Unknown ids are reported, field by field, by the store.
        return Ok(());
    };
    match unlike(&s, &t) {
        None => Ok(()),
        Some(why) => Err(Error::refused(Rule::KindMismatch, Some("supported"), why)),
    }
}

/// Why `supporter` may not support `supported` under `004`'s like-for-like rule, if it
/// may not: a tertiary general or TCM hospital supports a county hospital of its own kind.
pub(super) fn unlike(supporter: &Institution, supported: &Institution) -> Option<String> {
    let hospital = |k: Kind| matches!(k, Kind::General | Kind::Tcm);
    let (s, t) = (supporter, supported);
    (s.level == Level::Tertiary
        && t.level == Level::County
        && hospital(s.kind)
        && hospital(t.kind)
        && s.kind != t.kind)
        .then(|| {
            format!(
                "{} ({}) cannot be paired with {} ({}): general supports general and TCM supports TCM (004: 原则上三级综合医院支援县医院，三级中医医院支援县级中医医院)",
                s.name, s.kind, t.name, t.kind
            )
        })
}

/// `000` (派出对象): "已取得中级或以上职称的执业医师" — a clinician supports only with an
/// intermediate title or higher.
async fn qualified_supporter(store: &Store, supporter: Supporter) -> Result<(), Error> {
    let Supporter::Clinician(id) = supporter else {
        return Ok(());
    };
    let Some(c) = store.clinician(id).await? else {
        // An unknown id is reported, field by field, by the store.
        return Ok(());
    };
    match unqualified(&c) {
        None => Ok(()),
        Some(why) => Err(Error::refused(
            Rule::SupporterNotQualified,
            Some("supporter"),
            why,
        )),
    }
}

/// Why `c` may not be the supporter of a pairing under `000`, if they may not: they hold
/// a title below intermediate.
fn unqualified(c: &Clinician) -> Option<String> {
    (c.title_rank < TitleRank::Intermediate).then(|| {
        format!(
            "{} holds {} ({}); the program dispatches clinicians with an intermediate title or higher (000: 已取得中级或以上职称的执业医师)",
            c.name, c.title, c.title_rank
        )
    })
}

/// `000` still holds after a change to a clinician: their record as it would be (`after`)
/// is refused while it falls short of [`qualified_supporter`] and they are the supporter of
/// one of the pairings `supports` that stands on `today` (in force, or yet to begin). The
/// refusal blames the title, the only field the rule reads.
pub(super) fn still_qualified(
    after: &Clinician,
    supports: &[Pairing],
    today: NaiveDate,
) -> Result<(), Error> {
    let Some(why) = unqualified(after) else {
        return Ok(());
    };
    let standing = supports.iter().find(|p| {
        p.supporter == Supporter::Clinician(after.id)
            && matches!(p.standing(today), Standing::InForce | Standing::NotStarted)
    });
    match standing {
        None => Ok(()),
        Some(p) => Err(Error::refused(
            Rule::SupporterNotQualified,
            Some("title"),
            format!(
                "{} supports pairing {} until {}: {why}; change or end the pairing first",
                after.name, p.id, p.valid_to
            ),
        )),
    }
}

/// `004`: pairing is one-to-one ("通过一对一的对口帮扶"). No other pairing that has not been
/// ended names the same supported side for a service this one covers in an overlapping
/// period; a supporter changes through a change with a reason, or by ending one first.
async fn one_to_one(store: &Store, except: Option<i64>, d: &PairingDraft) -> Result<(), Error> {
    let supported_institution = match d.supported_institution {
        Some(id) => match store.institution(id).await? {
            Some(i) => Some((id, i.region.as_str().to_owned())),
            // An unknown id is reported by the store.
            None => return Ok(()),
        },
        None => None,
    };
    let filter = PairingFilter {
        supported_institution,
        limit: 10_000,
        ..PairingFilter::default()
    };
    let services =
        Services::parse(&d.services).map_err(|e| Error::field("services", e.to_string()))?;
    let clash = store.pairings(&filter).await?.into_iter().find(|p| {
        let same_side = match &p.supported {
            Supported::Institution(id) => d.supported_institution == Some(*id),
            Supported::Region(r) => d.supported_region.as_deref() == Some(r.as_str()),
        };
        Some(p.id) != except
            && p.status == PairingStatus::Active
            && same_side
            && p.valid_from <= d.valid_to
            && d.valid_from <= p.valid_to
            && services.iter().any(|s| p.services.contains(s))
    });
    match clash {
        None => Ok(()),
        Some(p) => Err(Error::refused(
            Rule::AlreadyPaired,
            Some("supported"),
            format!(
                "pairing {} already supports this side for {} from {} to {}: pairing is one-to-one (004: 一对一的对口帮扶); change that pairing with a reason, or end it first",
                p.id,
                services
                    .iter()
                    .filter(|s| p.services.contains(*s))
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.valid_from,
                p.valid_to
            ),
        )),
    }
}

fn stated(reason: Option<String>) -> Option<String> {
    reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
}

async fn current(store: &Store, id: i64) -> Result<Pairing, Error> {
    store
        .pairing(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("pairing {id}")))
}

/// Creates a pairing. Administrators only, as for changing and ending one.
pub async fn create_pairing(
    store: &Store,
    by: &User,
    input: PairingInput,
) -> Result<Pairing, Error> {
    require_admin(by, "create pairings")?;
    like_supports_like(store, input.supporter, &input.supported).await?;
    qualified_supporter(store, input.supporter).await?;
    let d = draft(
        input.supporter,
        input.supported,
        &input.services,
        input.valid_from,
        input.valid_to,
        PairingStatus::Active,
    )?;
    one_to_one(store, None, &d).await?;
    Ok(store.create_pairing(&d, by.id).await?)
}

/// Changes a pairing. Inside its period a change needs a reason; an ended pairing or one
/// whose period is over is a record and does not change.
pub async fn change_pairing(
    store: &Store,
    by: &User,
    id: i64,
    change: PairingChange,
) -> Result<Pairing, Error> {
    require_admin(by, "change pairings")?;
    let p = current(store, id).await?;
    let today = today_in_china();
    if p.status == PairingStatus::Ended || p.valid_to < today {
        return Err(Error::Conflict(
            format!("pairing {id} has ended; its history is a record and does not change").into(),
        ));
    }
    let reason = stated(change.reason);
    if p.in_period(today) && reason.is_none() {
        return Err(Error::field(
            "reason",
            "this pairing is inside its period: a change needs a stated reason (004: 期间无特殊原因不得变更对口帮扶关系)",
        ));
    }
    if p.in_period(today) {
        // What the pairing covered up to today stays as it was.
        if change.valid_from.is_some_and(|from| from != p.valid_from) {
            return Err(Error::field(
                "valid_from",
                "the period has begun: its first day no longer changes",
            ));
        }
        if change.valid_to.is_some_and(|to| to < today) {
            return Err(Error::field(
                "valid_to",
                "the last day cannot move into the past; end the pairing instead",
            ));
        }
    }
    let supporter = change.supporter.unwrap_or(p.supporter);
    let supported = change.supported.unwrap_or(p.supported);
    like_supports_like(store, supporter, &supported).await?;
    if change.supporter.is_some() {
        qualified_supporter(store, supporter).await?;
    }
    let d = draft(
        supporter,
        supported,
        change.services.as_ref().unwrap_or(&p.services),
        change.valid_from.unwrap_or(p.valid_from),
        change.valid_to.unwrap_or(p.valid_to),
        PairingStatus::Active,
    )?;
    one_to_one(store, Some(id), &d).await?;
    let expected = change.version.unwrap_or(p.version);
    let record = Change {
        by: by.id,
        at: store.now(),
        reason,
        action: "changed",
    };
    Ok(store.change_pairing(id, expected, &d, &record).await?)
}

/// Ends a pairing on `last_day`, with a reason.
pub async fn end_pairing(
    store: &Store,
    by: &User,
    id: i64,
    end: PairingEnd,
) -> Result<Pairing, Error> {
    require_admin(by, "end pairings")?;
    let p = current(store, id).await?;
    if p.status == PairingStatus::Ended {
        return Err(Error::Conflict(
            format!("pairing {id} has ended already").into(),
        ));
    }
    let reason = stated(end.reason)
        .ok_or_else(|| Error::field("reason", "ending a pairing needs a stated reason"))?;
    let today = today_in_china();
    let last_day = end.last_day.unwrap_or(today);
    if last_day < today {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is in the past: what a pairing covered stays as it was"),
        ));
    }
    if last_day > p.valid_to {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is after the end of the period, {}", p.valid_to),
        ));
    }
    if last_day < p.valid_from {
        return Err(Error::field(
            "last_day",
            format!("{last_day} is before the period starts, {}", p.valid_from),
        ));
    }
    let d = draft(
        p.supporter,
        p.supported,
        &p.services,
        p.valid_from,
        last_day,
        PairingStatus::Ended,
    )?;
    let record = Change {
        by: by.id,
        at: store.now(),
        reason: Some(reason),
        action: "ended",
    };
    Ok(store.change_pairing(id, p.version, &d, &record).await?)
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::domain::Service;
    use crate::store::NewClinician;
    use crate::testing::Fixture;

    fn input(supporter: Supporter, supported: &Institution, services: &[Service]) -> PairingInput {
        let today = today_in_china();
        PairingInput {
            supporter,
            supported: Supported::Institution(supported.id),
            services: Services::new(services.to_vec()).expect("a service"),
            valid_from: today - TimeDelta::days(30),
            valid_to: today + TimeDelta::days(365),
        }
    }

    /// A change of the services only, with `reason`.
    fn services_changed(services: &[Service], reason: Option<&str>) -> PairingChange {
        PairingChange {
            version: None,
            supporter: None,
            supported: None,
            services: Some(Services::new(services.to_vec()).expect("a service")),
            valid_from: None,
            valid_to: None,
            reason: reason.map(str::to_owned),
        }
    }

    /// A pairing of `supporter` with `supported` for `services`, created by the
    /// fixture's administrator.
    async fn paired(
        f: &Fixture,
        supporter: Supporter,
        supported: &Institution,
        services: &[Service],
    ) -> Pairing {
        create_pairing(&f.store, &f.admin, input(supporter, supported, services))
            .await
            .expect("a pairing")
    }

    fn refused_by(result: Result<Pairing, Error>, expected: Rule) -> String {
        match result {
            Err(Error::Refused { rule, detail, .. }) if rule == expected => detail.to_string(),
            other => panic!("expected a refusal under {expected:?}, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn one_supporter_per_side_and_service_at_a_time() {
        let f = Fixture::new().await;
        let first = f.institution("江门市中心医院", "tertiary", "general").await;
        let second = f.institution("江门市人民医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let p = paired(
            &f,
            Supporter::Institution(first.id),
            &county,
            &[Service::Consult],
        )
        .await;

        // A second supporter for the same county and service, in an overlapping period.
        let both = input(
            Supporter::Institution(second.id),
            &county,
            &[Service::Teaching, Service::Consult],
        );
        let detail = refused_by(
            create_pairing(&f.store, &f.admin, both.clone()).await,
            Rule::AlreadyPaired,
        );
        assert!(detail.contains(&format!("pairing {}", p.id)), "{detail}");
        // Another service, or a period after the first one's, is no clash.
        let other = input(
            Supporter::Institution(second.id),
            &county,
            &[Service::Teaching],
        );
        create_pairing(&f.store, &f.admin, other).await.unwrap();
        let mut later = input(
            Supporter::Institution(second.id),
            &county,
            &[Service::Consult],
        );
        later.valid_from = p.valid_to + TimeDelta::days(1);
        later.valid_to = p.valid_to + TimeDelta::days(400);
        create_pairing(&f.store, &f.admin, later).await.unwrap();
        // Changing the first one onto the second's services clashes too.
        let change = services_changed(
            &[Service::Teaching],
            Some("the county asked for teaching instead"),
        );
        refused_by(
            change_pairing(&f.store, &f.admin, p.id, change).await,
            Rule::AlreadyPaired,
        );
        // Once the first is ended, the second supporter may take the county over.
        let end = PairingEnd {
            last_day: None,
            reason: Some("the hospital's support moved".into()),
        };
        end_pairing(&f.store, &f.admin, p.id, end).await.unwrap();
        let mut now_on = input(
            Supporter::Institution(second.id),
            &county,
            &[Service::Consult],
        );
        now_on.valid_from = today_in_china() + TimeDelta::days(1);
        now_on.valid_to = p.valid_to;
        create_pairing(&f.store, &f.admin, now_on).await.unwrap();
    }

    #[tokio::test]
    async fn a_clinician_supports_only_with_an_intermediate_title_or_higher() {
        let f = Fixture::new().await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let village = f
            .institution("北陡镇那琴村卫生站", "village_station", "general")
            .await;
        let with_title = |title: &str, rank: &str| NewClinician {
            name: format!("{title}甲"),
            sex: None,
            institution_id: county.id,
            title: title.into(),
            title_rank: rank.into(),
            specialty: "全科".into(),
            licence_number: None,
            practice_since: None,
        };
        let junior = f
            .store
            .create_clinician(&with_title("医师", "junior"))
            .await
            .unwrap();
        let attending = f
            .store
            .create_clinician(&with_title("主治医师", "intermediate"))
            .await
            .unwrap();
        let detail = refused_by(
            create_pairing(
                &f.store,
                &f.admin,
                input(
                    Supporter::Clinician(junior.id),
                    &village,
                    &[Service::Consult],
                ),
            )
            .await,
            Rule::SupporterNotQualified,
        );
        assert!(
            detail.contains("已取得中级或以上职称的执业医师"),
            "{detail}"
        );
        create_pairing(
            &f.store,
            &f.admin,
            input(
                Supporter::Clinician(attending.id),
                &village,
                &[Service::Consult],
            ),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_change_inside_the_period_quotes_the_plan_verbatim() {
        let f = Fixture::new().await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let p = paired(
            &f,
            Supporter::Institution(tertiary.id),
            &county,
            &[Service::Consult],
        )
        .await;
        let change = services_changed(&[Service::Teaching], None);
        let refused = change_pairing(&f.store, &f.admin, p.id, change).await;
        let Err(Error::Invalid { field, detail }) = refused else {
            panic!("{refused:?}")
        };
        assert_eq!(field, "reason");
        // Document 004, section (三): "时间为2016-2020年，期间无特殊原因不得变更对口帮扶关系。"
        assert!(
            detail
                .english()
                .contains("期间无特殊原因不得变更对口帮扶关系"),
            "{detail}"
        );
    }
}

/// A pairing's training target for one year, as an administrator sets it from the
/// pairing's responsibility letter.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// Trainees of the supported side to train in the year, 1 to 1000.
    pub trainees: i64,
    /// Hours of training in the year at which a trainee counts, 1 to 2000.
    pub hours_each: i64,
}

/// The program's default target for `year`.
fn program_target(defaults: &ProgramConfig, year: i32) -> TrainingTarget {
    TrainingTarget {
        year,
        trainees: defaults.trainees_per_year.get(),
        hours_each: defaults.training_hours_per_trainee.get(),
        source: TargetSource::Program,
        set_by: None,
        set_at: None,
    }
}

/// The training target of `pairing` for `year`: its own, or the program's defaults.
pub async fn training_target(
    store: &Store,
    defaults: &ProgramConfig,
    pairing: &Pairing,
    year: i32,
) -> Result<TrainingTarget, Error> {
    let own = store.pairing_targets(pairing.id).await?;
    Ok(own
        .into_iter()
        .find(|t| t.year == year)
        .unwrap_or_else(|| program_target(defaults, year)))
}

/// The training target of pairing `id` for each year its period touches.
pub async fn training_targets(
    store: &Store,
    defaults: &ProgramConfig,
    id: i64,
) -> Result<Vec<TrainingTarget>, Error> {
    let p = current(store, id).await?;
    let own = store.pairing_targets(id).await?;
    Ok((p.valid_from.year()..=p.valid_to.year())
        .map(|year| {
            own.iter()
                .find(|t| t.year == year)
                .cloned()
                .unwrap_or_else(|| program_target(defaults, year))
        })
        .collect())
}

/// Sets pairing `id`'s training target for `year`, a year its period touches.
/// Administrators only; a pairing that has ended, or whose period is over, is a record.
pub async fn set_training_target(
    store: &Store,
    by: &User,
    id: i64,
    year: i64,
    input: TargetInput,
) -> Result<TrainingTarget, Error> {
    require_admin(by, "set a pairing's targets")?;
    let p = current(store, id).await?;
    if p.status == PairingStatus::Ended || p.valid_to < today_in_china() {
        return Err(Error::Conflict(
            format!("pairing {id} has ended; its targets are a record and do not change").into(),
        ));
    }
    let (first, last) = (p.valid_from.year(), p.valid_to.year());
    let year = i32::try_from(year)
        .ok()
        .filter(|y| (first..=last).contains(y))
        .ok_or_else(|| {
            Error::field(
                "year",
                format!("the pairing runs from {first} to {last}: {year} is outside it"),
            )
        })?;
    let trainees = u32::try_from(input.trainees)
        .ok()
        .filter(|n| (1..=1000).contains(n))
        .ok_or_else(|| Error::field("trainees", "a whole number from 1 to 1000"))?;
    let hours_each = u32::try_from(input.hours_each)
        .ok()
        .filter(|n| (1..=2000).contains(n))
        .ok_or_else(|| Error::field("hours_each", "a whole number of hours from 1 to 2000"))?;
    store
        .set_pairing_target(id, year, trainees, hours_each, by.id)
        .await?;
    let set = store.pairing_targets(id).await?;
    set.into_iter()
        .find(|t| t.year == year)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("the target just set is missing")))
}
