//! Clinicians as the units keep them: administrators, or the coordinators of the
//! clinician's unit, add clinicians and keep their name, title, specialty and credentials
//! current. Each is shown with what their records mean today: the years of practice, and
//! whether they qualify as a consultant.

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::pairings::still_qualified;
use super::{registered, require_manager};
use crate::booking::china;
use crate::domain::{
    Clinician, Pairing, QualificationGap, Sex, TitleRank, User, name_query, normalize_name,
};
use crate::rules::Error;
use crate::store::{ClinicianFilter, NewClinician, Store};

/// A new clinician.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicianInput {
    /// Name.
    pub name: String,
    /// Sex.
    pub sex: Option<Sex>,
    /// Unit.
    pub institution_id: i64,
    /// Professional title as written, e.g. 副主任中医师; its rank is derived.
    pub title: String,
    /// Specialty.
    pub specialty: String,
    /// Practising licence number.
    pub licence_number: Option<String>,
    /// The day independent practice began, `YYYY-MM-DD`; years of practice count from it.
    pub practice_since: Option<NaiveDate>,
}

/// A change to a clinician's record, as the unit's records show it now: any field left
/// out keeps its value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClinicianChange {
    /// New name; stray spaces are removed, and it may not be empty.
    pub name: Option<String>,
    /// New professional title as written, e.g. 主治中医师; its rank is derived. The
    /// supporter of a pairing in force (or yet to begin) keeps an intermediate title or
    /// higher (`000`): a lower one is refused under `supporter-not-qualified`.
    pub title: Option<String>,
    /// New specialty.
    pub specialty: Option<String>,
    /// Practising licence number; null when it lapsed.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub licence_number: Option<Option<String>>,
    /// The day independent practice began, `YYYY-MM-DD`; years of practice count from it.
    /// Null when it is not known.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<NaiveDate>)]
    pub practice_since: Option<Option<NaiveDate>>,
}

/// A field that is present, as `Some` of its value, null included: with
/// `#[serde(default)]`, a field left out (`None`) keeps its value and a null clears it.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A clinician with what their records mean today.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClinicianRecord {
    /// The clinician as registered.
    #[serde(flatten)]
    pub clinician: Clinician,
    /// Full years of independent practice today (in China), counted from
    /// `practice_since` on the gateway's clock; null when that day is not recorded.
    pub practice_years: Option<i32>,
    /// What keeps the clinician from being the consultant of a remote consultation (a
    /// licensed physician with three years of independent practice); empty when they
    /// qualify.
    pub consultant_gaps: Vec<QualificationGap>,
}

impl ClinicianRecord {
    fn of(clinician: Clinician, today: NaiveDate) -> Self {
        Self {
            practice_years: clinician.practice_years(today),
            consultant_gaps: clinician.qualification_gaps(None, today),
            clinician,
        }
    }
}

/// What a search for clinicians asks: the page is the caller's to choose.
#[derive(Debug, Default)]
pub struct ClinicianSearch {
    /// Unit.
    pub institution_id: Option<i64>,
    /// Part of the specialty.
    pub specialty: Option<String>,
    /// This rank or higher.
    pub min_rank: Option<TitleRank>,
    /// Part of the name.
    pub name: Option<String>,
}

/// A day practice began lies in the last 70 years and not after `today`.
fn check_since(since: Option<NaiveDate>, today: NaiveDate) -> Result<(), Error> {
    let Some(since) = since else {
        return Ok(());
    };
    if since > today {
        return Err(Error::field(
            "practice_since",
            format!("{since} is after today, {today}"),
        ));
    }
    if today.years_since(since).is_none_or(|y| y > 70) {
        return Err(Error::field(
            "practice_since",
            format!("{since} is more than 70 years ago"),
        ));
    }
    Ok(())
}

/// A clinician's name as registered: stray spaces removed, not empty.
fn checked_name(raw: &str) -> Result<String, Error> {
    let name = normalize_name(raw);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    Ok(name)
}

/// A professional title as registered, with the rank it maps to; refused when it maps to
/// none.
fn ranked_title(raw: &str) -> Result<(String, TitleRank), Error> {
    let title = normalize_name(raw);
    let rank = TitleRank::of_title(&title).ok_or_else(|| {
        Error::field(
            "title",
            format!("{title:?} is not a known professional title"),
        )
    })?;
    Ok((title, rank))
}

/// Today in China by the store's clock.
fn today(store: &Store) -> NaiveDate {
    store.now().with_timezone(&china()).date_naive()
}

fn licence(number: Option<&str>) -> Option<&str> {
    number.map(str::trim).filter(|l| !l.is_empty())
}

/// Clinicians matching `search`, a page of `limit` after `offset`. Any logged-in user.
pub async fn clinicians(
    store: &Store,
    search: ClinicianSearch,
    limit: i64,
    offset: i64,
) -> Result<Vec<ClinicianRecord>, Error> {
    let ranks = search.min_rank.map(|min| {
        TitleRank::ALL
            .iter()
            .filter(|r| **r >= min)
            .map(|r| r.as_str().to_owned())
            .collect()
    });
    let filter = ClinicianFilter {
        institution_id: search.institution_id,
        specialty: search.specialty.filter(|s| !s.trim().is_empty()),
        ranks,
        name: name_query(search.name),
        limit,
        offset,
    };
    let today = today(store);
    Ok(store
        .clinicians(&filter)
        .await?
        .into_iter()
        .map(|c| ClinicianRecord::of(c, today))
        .collect())
}

/// One clinician with what their records mean today. Any logged-in user.
pub async fn clinician_record(store: &Store, id: i64) -> Result<ClinicianRecord, Error> {
    let c = clinician(store, id).await?;
    Ok(ClinicianRecord::of(c, today(store)))
}

/// One clinician. Any logged-in user.
pub async fn clinician(store: &Store, id: i64) -> Result<Clinician, Error> {
    store
        .clinician(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))
}

/// Adds a clinician: administrators, or coordinators of the clinician's unit. The title's
/// rank is derived from the title as written.
pub async fn create_clinician(
    store: &Store,
    by: &User,
    input: ClinicianInput,
) -> Result<ClinicianRecord, Error> {
    require_manager(by, input.institution_id, "add its clinicians")?;
    let name = checked_name(&input.name)?;
    let (title, rank) = ranked_title(&input.title)?;
    check_since(input.practice_since, today(store))?;
    let new = NewClinician {
        name,
        sex: input.sex.map(|s| s.as_str().to_owned()),
        institution_id: input.institution_id,
        title,
        title_rank: rank.as_str().to_owned(),
        specialty: normalize_name(&input.specialty),
        licence_number: licence(input.licence_number.as_deref()).map(str::to_owned),
        practice_since: input.practice_since,
    };
    let c = store
        .create_clinician(&new)
        .await
        .map_err(registered("licence_number"))?;
    Ok(ClinicianRecord::of(c, today(store)))
}

/// Changes a clinician's name, title, specialty, licence or the day their practice began:
/// administrators, or coordinators of the clinician's unit. Each is checked as when the
/// clinician was added, and the title's rank follows from the title. The supporter of a
/// pairing in force (or yet to begin) keeps the title the program dispatches (`000`). The
/// change is read, checked and written in one transaction: a refused one writes nothing.
/// Consultants are checked against their credentials again at signing.
pub async fn update_clinician(
    store: &Store,
    by: &User,
    id: i64,
    change: ClinicianChange,
) -> Result<ClinicianRecord, Error> {
    let c = clinician(store, id).await?;
    require_manager(by, c.institution_id, "change its clinicians")?;
    let name = change.name.as_deref().map(checked_name).transpose()?;
    let title = change.title.as_deref().map(ranked_title).transpose()?;
    let specialty = change.specialty.as_deref().map(normalize_name);
    let licence_number = change
        .licence_number
        .map(|l| licence(l.as_deref()).map(str::to_owned));
    let today = today(store);
    if let Some(since) = change.practice_since {
        check_since(since, today)?;
    }
    let decide = |before: Clinician, supports: &[Pairing]| -> Result<Clinician, Error> {
        let mut after = before.clone();
        if let Some(name) = name {
            after.name = name;
        }
        if let Some((title, rank)) = title {
            after.title = title;
            after.title_rank = rank;
        }
        if let Some(specialty) = specialty {
            after.specialty = specialty;
        }
        if let Some(licence_number) = licence_number {
            after.licence_number = licence_number;
        }
        if let Some(since) = change.practice_since {
            after.practice_since = since;
        }
        if after.title_rank < before.title_rank {
            still_qualified(&after, supports, today)?;
        }
        Ok(after)
    };
    let c = store
        .change_clinician(id, decide)
        .await
        .map_err(registered("licence_number"))?
        .ok_or_else(|| Error::NotFound(format!("clinician {id}")))??;
    Ok(ClinicianRecord::of(c, today))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Supporter;
    use crate::testing::Fixture;

    #[tokio::test]
    async fn only_the_units_coordinator_or_an_administrator_keeps_its_clinicians() {
        let f = Fixture::new().await;
        let county = f.institution("甲县人民医院", "county", "general").await;
        let other = f.institution("乙县人民医院", "county", "general").await;
        let coordinator = f.user(&county, "coordinator", None).await;
        let outsider = f.user(&other, "coordinator", None).await;
        let doctor = f.user(&county, "clinician", None).await;
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let input = || ClinicianInput {
            name: " 李 四 ".into(),
            sex: None,
            institution_id: county.id,
            title: "副主任医师".into(),
            specialty: "心内科".into(),
            licence_number: Some("  ".into()),
            practice_since: Some(day("2019-09-01")),
        };

        let c = create_clinician(&f.store, &coordinator, input())
            .await
            .unwrap();
        let c = c.clinician;
        assert_eq!((c.name.as_str(), c.licence_number), ("李四", None));
        for by in [&outsider, &doctor] {
            let refused = create_clinician(&f.store, by, input()).await.unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
            let refused = update_clinician(
                &f.store,
                by,
                c.id,
                ClinicianChange {
                    licence_number: Some(Some("110440000000001".into())),
                    practice_since: Some(Some(day("2018-09-01"))),
                    ..ClinicianChange::default()
                },
            )
            .await
            .unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
        }
        let tomorrow = today(&f.store) + chrono::TimeDelta::days(1);
        for bad in [tomorrow, day("1940-01-01")] {
            let refused = update_clinician(
                &f.store,
                &f.admin,
                c.id,
                ClinicianChange {
                    practice_since: Some(Some(bad)),
                    ..ClinicianChange::default()
                },
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&refused, Error::Invalid { field, .. } if field == "practice_since"),
                "{bad}: {refused:?}"
            );
        }
        let unknown_title = create_clinician(
            &f.store,
            &f.admin,
            ClinicianInput {
                title: "院长".into(),
                ..input()
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&unknown_title, Error::Invalid { field, .. } if field == "title"),
            "{unknown_title:?}"
        );
        assert_eq!(
            clinician(&f.store, c.id).await.unwrap().practice_since,
            Some(day("2019-09-01")),
            "nothing refused was written"
        );
    }

    #[tokio::test]
    async fn a_clinician_is_shown_with_the_years_and_what_keeps_them_from_consulting() {
        let f = Fixture::new().await;
        let county = f.institution("甲县人民医院", "county", "general").await;
        let today = today(&f.store);
        let years_ago = |n: u32| today.checked_sub_months(chrono::Months::new(12 * n));
        let c = create_clinician(
            &f.store,
            &f.admin,
            ClinicianInput {
                name: "王五".into(),
                sex: Some(Sex::Female),
                institution_id: county.id,
                title: "主治医师".into(),
                specialty: "内科".into(),
                licence_number: None,
                practice_since: years_ago(2),
            },
        )
        .await
        .unwrap();
        assert_eq!(c.practice_years, Some(2));
        assert_eq!(
            c.consultant_gaps,
            [
                QualificationGap::NoLicence,
                QualificationGap::UnderThreeYears
            ]
        );
        let credentials = || ClinicianChange {
            licence_number: Some(Some("110440000000009".into())),
            practice_since: Some(years_ago(3)),
            ..ClinicianChange::default()
        };
        let c = update_clinician(&f.store, &f.admin, c.clinician.id, credentials())
            .await
            .unwrap();
        assert_eq!(c.practice_years, Some(3));
        assert!(c.consultant_gaps.is_empty(), "{:?}", c.consultant_gaps);

        // A licence number is registered once; the refusal names the field.
        let other = f.clinician(&county, "赵六").await;
        let refused = update_clinician(&f.store, &f.admin, other.id, credentials())
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Error::Refused { rule: crate::rules::Rule::AlreadyRegistered, field: Some(field), .. } if field == "licence_number"),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn the_supporter_of_a_pairing_that_stands_keeps_an_intermediate_title() {
        let f = Fixture::new().await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let village = f
            .institution("北陡镇那琴村卫生站", "village_station", "general")
            .await;
        let other_village = f
            .institution("北陡镇石蕉村卫生站", "village_station", "general")
            .await;
        let today = today(&f.store);
        let year = chrono::TimeDelta::days(365);
        let supporter = f.clinician(&county, "刘双贤").await;
        let retired = f.clinician(&county, "郭江斌").await;
        f.pairing(Supporter::Clinician(supporter.id), &village, "consult")
            .await;
        // A pairing whose period is over holds nobody to the rule.
        f.pairing_between(
            Supporter::Clinician(retired.id),
            &other_village,
            "consult",
            today - year - year,
            today - year,
        )
        .await;
        let titled = |title: &str| ClinicianChange {
            title: Some(title.into()),
            ..ClinicianChange::default()
        };

        let refused = update_clinician(&f.store, &f.admin, supporter.id, titled("住院医师"))
            .await
            .unwrap_err();
        match &refused {
            Error::Refused {
                rule: crate::rules::Rule::SupporterNotQualified,
                field: Some(field),
                detail,
            } => {
                assert_eq!(field, "title");
                assert!(
                    detail.english().contains("已取得中级或以上职称的执业医师"),
                    "{detail}"
                );
            }
            other => panic!("expected the supporter rule, got {other:?}"),
        }
        assert_eq!(
            clinician(&f.store, supporter.id).await.unwrap(),
            supporter,
            "nothing refused was written"
        );
        // Down to 主治医师 (中级) is allowed, with a new name and specialty.
        let changed = update_clinician(
            &f.store,
            &f.admin,
            supporter.id,
            ClinicianChange {
                name: Some(" 刘 双贤 ".into()),
                specialty: Some("妇产科".into()),
                ..titled("主治中医师")
            },
        )
        .await
        .unwrap()
        .clinician;
        assert_eq!(
            (
                changed.name.as_str(),
                changed.title.as_str(),
                changed.title_rank,
                changed.specialty.as_str()
            ),
            ("刘双贤", "主治中医师", TitleRank::Intermediate, "妇产科")
        );
        assert_eq!(
            changed.licence_number, supporter.licence_number,
            "what was left out stays"
        );
        let retired = update_clinician(&f.store, &f.admin, retired.id, titled("医师"))
            .await
            .unwrap()
            .clinician;
        assert_eq!(retired.title_rank, TitleRank::Junior);
    }
}
