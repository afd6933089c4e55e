//! Institutions: administrators add and change them; an institution's coordinators (or
//! an administrator) set where it is notified. A change of level or kind is checked
//! against the pairings that stand, so that none of them is left contradicting a rule it
//! was made under.

use serde::Deserialize;
use utoipa::ToSchema;

use duikou_imaging::outbound::{Policy, Refused};

use super::pairings::unlike;
use super::{registered, require_admin, today_in_china};
use crate::domain::{
    Institution, Kind, Level, PairingStatus, RegionPath, Supported, Supporter, User, name_query,
    normalize_name,
};
use crate::rules::{Error, Rule};
use crate::store::{InstitutionFilter, NewInstitution, PairingFilter, Store};

/// A new institution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionInput {
    /// Name; stray spaces are removed.
    pub name: String,
    /// Tier.
    pub level: Level,
    /// Kind.
    pub kind: Kind,
    /// Region path.
    #[schema(value_type = String)]
    pub region: RegionPath,
    /// 偏远 / 老区村.
    #[serde(default)]
    pub remote: bool,
}

/// A change to an institution: any field left out keeps its value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionChange {
    /// New name; stray spaces are removed.
    pub name: Option<String>,
    /// New tier; refused if a pairing that stands depends on the old one.
    pub level: Option<Level>,
    /// New kind; refused if a pairing that stands depends on the old one.
    pub kind: Option<Kind>,
    /// New region path.
    #[schema(value_type = Option<String>)]
    pub region: Option<RegionPath>,
    /// 偏远 / 老区村.
    pub remote: Option<bool>,
}

/// Where an institution receives notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An `https://` (or `http://`, inside a hospital network) URL.
    pub url: String,
    /// The shared secret for `X-Duikou-Signature`, at least 16 characters.
    pub secret: String,
}

/// What a search for institutions asks: the page is the caller's to choose.
#[derive(Debug, Default)]
pub struct InstitutionSearch {
    /// In this region or below it.
    pub region: Option<RegionPath>,
    /// Tier.
    pub level: Option<Level>,
    /// Kind.
    pub kind: Option<Kind>,
    /// Remote only, or non-remote only.
    pub remote: Option<bool>,
    /// Part of the name.
    pub name: Option<String>,
}

/// Institutions matching `search`, a page of `limit` after `offset`. Any logged-in user.
pub async fn institutions(
    store: &Store,
    search: InstitutionSearch,
    limit: i64,
    offset: i64,
) -> Result<Vec<Institution>, Error> {
    let filter = InstitutionFilter {
        region: search.region.map(String::from),
        level: search.level.map(|l| l.as_str().to_owned()),
        kind: search.kind.map(|k| k.as_str().to_owned()),
        remote: search.remote,
        name: name_query(search.name),
        limit,
        offset,
    };
    Ok(store.institutions(&filter).await?)
}

/// One institution. Any logged-in user.
pub async fn institution(store: &Store, id: i64) -> Result<Institution, Error> {
    store
        .institution(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))
}

/// Refuses unless `by` manages institution `id` (its coordinators or an administrator,
/// who may `what`) and it exists.
pub async fn managed(store: &Store, by: &User, id: i64, what: &str) -> Result<Institution, Error> {
    if !by.manages(id) {
        return Err(Error::forbidden(format!(
            "the institution's coordinators or an administrator {what}"
        )));
    }
    institution(store, id).await
}

/// Adds an institution. Administrators only.
pub async fn create_institution(
    store: &Store,
    by: &User,
    input: InstitutionInput,
) -> Result<Institution, Error> {
    require_admin(by, "add institutions")?;
    let name = normalize_name(&input.name);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let new = NewInstitution {
        name,
        level: input.level.as_str().into(),
        kind: input.kind.as_str().into(),
        region: input.region.into(),
        remote: input.remote,
    };
    store
        .create_institution(&new)
        .await
        .map_err(registered("name"))
}

/// Changes institution `id`. Administrators only: an institution has no contact details
/// of its own for its coordinators to keep (where it is notified is its webhook, which
/// they set). The name stays unique in its region, as when it was added.
pub async fn update_institution(
    store: &Store,
    by: &User,
    id: i64,
    change: InstitutionChange,
) -> Result<Institution, Error> {
    require_admin(by, "change institutions")?;
    let before = institution(store, id).await?;
    let name = match change.name {
        Some(name) => normalize_name(&name),
        None => before.name.clone(),
    };
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let after = Institution {
        id,
        name,
        level: change.level.unwrap_or(before.level),
        kind: change.kind.unwrap_or(before.kind),
        region: change.region.unwrap_or_else(|| before.region.clone()),
        remote: change.remote.unwrap_or(before.remote),
    };
    if (after.level, after.kind) != (before.level, before.kind) {
        pairings_still_hold(store, &before, &after).await?;
    }
    let new = NewInstitution {
        name: after.name,
        level: after.level.as_str().into(),
        kind: after.kind.as_str().into(),
        region: after.region.into(),
        remote: after.remote,
    };
    store
        .update_institution(id, &new)
        .await
        .map_err(registered("name"))?
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))
}

/// Refuses a change of `before` into `after` that would leave a pairing that stands (not
/// ended, its period not over) contradicting a rule it was made under: the supporter
/// stands above the supported in the tiers ([`Level::tier`]), and `004`'s like-for-like
/// rule. The institution is a side of a pairing directly, or as the unit of a supporting
/// clinician or team; pairings with a whole region are exempt, as at their creation.
async fn pairings_still_hold(
    store: &Store,
    before: &Institution,
    after: &Institution,
) -> Result<(), Error> {
    let today = today_in_china();
    let all = PairingFilter {
        limit: 100_000,
        ..PairingFilter::default()
    };
    let standing = store
        .pairings(&all)
        .await?
        .into_iter()
        .filter(|p| p.status == PairingStatus::Active && p.valid_to >= today);
    let blamed = if after.kind != before.kind {
        "kind"
    } else {
        "level"
    };
    for p in standing {
        let Supported::Institution(supported_id) = p.supported else {
            continue;
        };
        let supporter_unit = match p.supporter {
            Supporter::Institution(i) => Some(i),
            Supporter::Clinician(c) => store.clinician(c).await?.map(|c| c.institution_id),
            Supporter::Team(t) => store.team(t).await?.map(|t| t.institution_id),
        };
        let Some(supporter_unit) = supporter_unit else {
            continue;
        };
        // The pairing's two sides, before and after the change.
        let (was, will_be) = if supporter_unit == before.id && supported_id != before.id {
            let Some(other) = store.institution(supported_id).await? else {
                continue;
            };
            ((before.clone(), other.clone()), (after.clone(), other))
        } else if supported_id == before.id && supporter_unit != before.id {
            let Some(other) = store.institution(supporter_unit).await? else {
                continue;
            };
            ((other.clone(), before.clone()), (other, after.clone()))
        } else {
            continue;
        };
        let above = |(s, t): &(Institution, Institution)| match (s.level.tier(), t.level.tier()) {
            (Some(s), Some(t)) => s > t,
            _ => true,
        };
        let stands = format!(
            "pairing {} ({} supports {}) stands until {}",
            p.id, was.0.name, was.1.name, p.valid_to
        );
        if above(&was) && !above(&will_be) {
            return Err(Error::refused(
                Rule::ContradictsPairing,
                Some("level"),
                format!(
                    "{stands}: a supporter stands above the institution it supports (004: 组织全国三级医院对口帮扶贫困县县级医院); change or end the pairing first"
                ),
            ));
        }
        if matches!(p.supporter, Supporter::Institution(_)) && unlike(&was.0, &was.1).is_none() {
            if let Some(why) = unlike(&will_be.0, &will_be.1) {
                return Err(Error::refused(
                    Rule::ContradictsPairing,
                    Some(blamed),
                    format!("{stands}: {why}; change or end the pairing first"),
                ));
            }
        }
    }
    Ok(())
}

/// Sets institution `id`'s webhook: its coordinators or an administrator. Where the URL
/// leads is checked against `policy` now, to tell the coordinator, and again at every call.
pub async fn set_webhook(
    store: &Store,
    policy: &Policy,
    by: &User,
    id: i64,
    input: WebhookInput,
) -> Result<(), Error> {
    managed(store, by, id, "set its webhook").await?;
    let url = input.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        return Err(Error::field("url", "an http:// or https:// URL"));
    }
    crate::notify::check_url(url, policy).map_err(|e| Error::field("url", e))?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if let Err(e @ Refused::Address(_)) = policy.resolve(&host, 0).await {
        return Err(Error::field("url", e.to_string()));
    }
    if input.secret.chars().count() < 16 {
        return Err(Error::field("secret", "at least 16 characters"));
    }
    store.set_webhook(id, url, &input.secret).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fixture;

    fn changed_by(result: Result<Institution, Error>) -> (Rule, String, String) {
        match result {
            Err(Error::Refused {
                rule,
                field: Some(field),
                detail,
            }) => (rule, field, detail.to_string()),
            other => panic!("expected a refusal naming a field, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_change_of_level_or_kind_may_not_contradict_a_pairing_that_stands() {
        let f = Fixture::new().await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let town = f
            .institution("北陡镇卫生院", "township", "health_centre")
            .await;
        let village = f
            .institution("北陡镇那琴村卫生站", "village_station", "village_station")
            .await;
        f.pairing(Supporter::Institution(tertiary.id), &county, "consult")
            .await;
        let doctor = f.clinician(&town, "李医生").await;
        f.pairing(Supporter::Clinician(doctor.id), &village, "consult")
            .await;
        let to_level = |id: i64, level: Level| {
            let change = InstitutionChange {
                level: Some(level),
                ..InstitutionChange::default()
            };
            update_institution(&f.store, &f.admin, id, change)
        };

        // 004: a tertiary general hospital supports a county general hospital.
        let tcm = InstitutionChange {
            kind: Some(Kind::Tcm),
            ..InstitutionChange::default()
        };
        let (rule, field, detail) =
            changed_by(update_institution(&f.store, &f.admin, county.id, tcm).await);
        assert_eq!((rule, field.as_str()), (Rule::ContradictsPairing, "kind"));
        assert!(
            detail.contains("原则上三级综合医院支援县医院，三级中医医院支援县级中医医院"),
            "{detail}"
        );
        // The supported county may not rise to the tier of its supporter.
        let (_, field, detail) = changed_by(to_level(county.id, Level::Tertiary).await);
        assert_eq!(field, "level");
        assert!(
            detail.contains("江门市中心医院 supports 台山市人民医院"),
            "{detail}"
        );
        // Nor may a clinician's unit sink to the tier of the village it supports.
        let (_, field, _) = changed_by(to_level(town.id, Level::VillageStation).await);
        assert_eq!(field, "level");
        assert_eq!(
            f.store.institution(county.id).await.unwrap().unwrap(),
            county
        );
        assert_eq!(f.store.institution(town.id).await.unwrap().unwrap(), town);

        // What no pairing depends on changes: a county hospital becomes secondary, a
        // village station is marked remote and renamed.
        let secondary = to_level(county.id, Level::Secondary).await.unwrap();
        assert_eq!(secondary.level, Level::Secondary);
        let remote = update_institution(
            &f.store,
            &f.admin,
            village.id,
            InstitutionChange {
                name: Some(" 北陡镇那琴村 卫生站 ".into()),
                remote: Some(true),
                ..InstitutionChange::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(
            (remote.name.as_str(), remote.remote),
            ("北陡镇那琴村卫生站", true)
        );
        assert_eq!(remote.level, Level::VillageStation);
    }

    #[tokio::test]
    async fn only_an_administrator_changes_an_institution_and_its_name_stays_unique() {
        let f = Fixture::new().await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let other = f.institution("开平市中心医院", "county", "general").await;
        let coordinator = f.user(&county, "coordinator", None).await;
        let doctor = f.user(&county, "clinician", None).await;
        let remote = || InstitutionChange {
            remote: Some(true),
            ..InstitutionChange::default()
        };
        for by in [&coordinator, &doctor] {
            let refused = update_institution(&f.store, by, county.id, remote())
                .await
                .unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
        }
        let missing = update_institution(&f.store, &f.admin, 999_999, remote()).await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
        let empty = update_institution(
            &f.store,
            &f.admin,
            county.id,
            InstitutionChange {
                name: Some("  ".into()),
                ..InstitutionChange::default()
            },
        )
        .await;
        assert!(
            matches!(&empty, Err(Error::Invalid { field, .. }) if field == "name"),
            "{empty:?}"
        );
        let taken = InstitutionChange {
            name: Some(other.name.clone()),
            region: Some(other.region.clone()),
            ..InstitutionChange::default()
        };
        let (rule, field, _) =
            changed_by(update_institution(&f.store, &f.admin, county.id, taken).await);
        assert_eq!((rule, field.as_str()), (Rule::AlreadyRegistered, "name"));
        assert_eq!(
            f.store.institution(county.id).await.unwrap().unwrap(),
            county
        );
    }
}
