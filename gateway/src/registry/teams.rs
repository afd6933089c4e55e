//! Expert teams (专家团队) of a unit: a leader and members, formed and changed by
//! administrators or the unit's coordinators. Where the Huancui plan applies (the teams of
//! units in 环翠区, `003`), a team has 5 to 10 members, its leader among them; no other
//! program document sets a size for the teams the gateway keeps, so other teams are
//! shown with their count and not refused.

use std::ops::RangeInclusive;

use serde::Deserialize;
use utoipa::ToSchema;

use super::{registered, require_manager};
use crate::domain::{HUANCUI, RegionPath, Team, User, normalize_name};
use crate::rules::{Error, Rule};
use crate::store::{NewTeam, Store};

/// A new team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamInput {
    /// Name.
    pub name: String,
    /// The unit that dispatches the team; the leader and members are its clinicians.
    pub institution_id: i64,
    /// The leader (团队长).
    pub leader_id: i64,
    /// Other members.
    #[serde(default)]
    pub member_ids: Vec<i64>,
}

/// A change to a team: any field left out keeps its value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    /// New name.
    pub name: Option<String>,
    /// New leader (团队长), a clinician of the team's unit; they become a member.
    pub leader_id: Option<i64>,
    /// The members from now on, besides the leader.
    pub member_ids: Option<Vec<i64>>,
}

/// `003` (三、团队组建): "每个团队至少由5-10名队员组成", the leader counted among them
/// ("每个团队指定一名团队长").
const HUANCUI_TEAM: RangeInclusive<usize> = 5..=10;

/// The members besides `leader`, each once.
fn others(leader: i64, mut members: Vec<i64>) -> Vec<i64> {
    members.sort_unstable();
    members.dedup();
    members.retain(|m| *m != leader);
    members
}

/// Refuses a team of `size` members (the leader included) that its unit's plan does not
/// allow: 5 to 10 for a unit in 环翠区 (`003`).
async fn sized_for_its_plan(store: &Store, institution_id: i64, size: usize) -> Result<(), Error> {
    let Some(unit) = store.institution(institution_id).await? else {
        // An unknown unit is reported, field by field, by the store.
        return Ok(());
    };
    let huancui = RegionPath::parse(HUANCUI).expect("a valid region path");
    if huancui.contains(&unit.region) && !HUANCUI_TEAM.contains(&size) {
        return Err(Error::refused(
            Rule::TeamSize,
            Some("member_ids"),
            format!(
                "a team of {} has {size} members with its leader; the Huancui plan forms teams of {} to {} (003: 每个团队至少由5-10名队员组成)",
                unit.name,
                HUANCUI_TEAM.start(),
                HUANCUI_TEAM.end()
            ),
        ));
    }
    Ok(())
}

fn name_of(raw: &str) -> Result<String, Error> {
    let name = normalize_name(raw);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    Ok(name)
}

/// Teams, of one institution when given. Any logged-in user.
pub async fn teams(store: &Store, institution_id: Option<i64>) -> Result<Vec<Team>, Error> {
    Ok(store.teams(institution_id).await?)
}

/// One team. Any logged-in user.
pub async fn team(store: &Store, id: i64) -> Result<Team, Error> {
    store
        .team(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("team {id}")))
}

/// Forms a team: administrators, or coordinators of the team's unit.
pub async fn create_team(store: &Store, by: &User, input: TeamInput) -> Result<Team, Error> {
    require_manager(by, input.institution_id, "form its teams")?;
    let name = name_of(&input.name)?;
    let member_ids = others(input.leader_id, input.member_ids);
    sized_for_its_plan(store, input.institution_id, member_ids.len() + 1).await?;
    let new = NewTeam {
        name,
        institution_id: input.institution_id,
        leader_id: input.leader_id,
        member_ids,
    };
    store.create_team(&new).await.map_err(registered("name"))
}

/// Changes a team's name, leader or members: administrators, or coordinators of the
/// team's unit. The team stays with its unit.
pub async fn update_team(
    store: &Store,
    by: &User,
    id: i64,
    change: TeamChange,
) -> Result<Team, Error> {
    let t = team(store, id).await?;
    require_manager(by, t.institution_id, "change its teams")?;
    let name = match change.name {
        Some(name) => name_of(&name)?,
        None => t.name,
    };
    let leader_id = change.leader_id.unwrap_or(t.leader_id);
    let member_ids = others(leader_id, change.member_ids.unwrap_or(t.member_ids));
    sized_for_its_plan(store, t.institution_id, member_ids.len() + 1).await?;
    let new = NewTeam {
        name,
        institution_id: t.institution_id,
        leader_id,
        member_ids,
    };
    store
        .update_team(id, &new)
        .await
        .map_err(registered("name"))?
        .ok_or_else(|| Error::NotFound(format!("team {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Clinician, Institution};
    use crate::testing::Fixture;

    async fn doctors_of(f: &Fixture, unit: &Institution, n: usize) -> Vec<Clinician> {
        let mut all = Vec::new();
        for i in 0..n {
            all.push(f.clinician(unit, &format!("队员{i}")).await);
        }
        all
    }

    fn ids(c: &[Clinician]) -> Vec<i64> {
        c.iter().map(|c| c.id).collect()
    }

    #[tokio::test]
    async fn a_huancui_team_has_five_to_ten_members_with_its_leader() {
        let f = Fixture::new().await;
        let weihai = f
            .institution("威海卫人民医院", "secondary", "general")
            .await;
        let in_huancui = crate::registry::InstitutionChange {
            region: Some(RegionPath::parse(HUANCUI).unwrap()),
            ..Default::default()
        };
        crate::registry::update_institution(&f.store, &f.admin, weihai.id, in_huancui)
            .await
            .unwrap();
        let doctors = doctors_of(&f, &weihai, 11).await;
        let input = |members: &[Clinician]| TeamInput {
            name: "大北山村巡诊团队".into(),
            institution_id: weihai.id,
            leader_id: doctors[0].id,
            member_ids: ids(members),
        };
        for members in [&doctors[1..4], &doctors[1..11]] {
            let refused = create_team(&f.store, &f.admin, input(members))
                .await
                .unwrap_err();
            let Error::Refused {
                rule: Rule::TeamSize,
                field: Some(field),
                detail,
            } = refused
            else {
                panic!("{refused:?}")
            };
            assert_eq!(field, "member_ids");
            assert!(
                detail.english().contains("每个团队至少由5-10名队员组成"),
                "{detail}"
            );
        }
        assert!(teams(&f.store, Some(weihai.id)).await.unwrap().is_empty());
        // The leader listed again among the members counts once.
        let t = create_team(&f.store, &f.admin, input(&doctors[0..5]))
            .await
            .unwrap();
        assert_eq!(t.member_ids.len(), 5);

        // A new leader joins the team; a change below five is refused and changes nothing.
        let change = |leader_id: Option<i64>, member_ids: Option<Vec<i64>>| {
            let change = TeamChange {
                leader_id,
                member_ids,
                ..TeamChange::default()
            };
            update_team(&f.store, &f.admin, t.id, change)
        };
        let changed = change(Some(doctors[7].id), None).await.unwrap();
        assert_eq!(changed.leader_id, doctors[7].id);
        assert_eq!(changed.member_ids.len(), 6);
        let refused = change(None, Some(ids(&doctors[1..3]))).await.unwrap_err();
        assert_eq!(refused.rule(), Some(Rule::TeamSize), "{refused:?}");
        assert_eq!(team(&f.store, t.id).await.unwrap(), changed);
    }

    #[tokio::test]
    async fn elsewhere_a_team_of_any_size_is_kept_by_its_units_managers_only() {
        let f = Fixture::new().await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let other = f.institution("开平市中心医院", "county", "general").await;
        let doctors = doctors_of(&f, &county, 3).await;
        let stranger = f.clinician(&other, "外院医生").await;
        let coordinator = f.user(&county, "coordinator", None).await;
        let outsider = f.user(&other, "coordinator", None).await;
        let clinician = f.user(&county, "clinician", Some(&doctors[1])).await;
        let input = || TeamInput {
            name: "内科查房组".into(),
            institution_id: county.id,
            leader_id: doctors[0].id,
            member_ids: Vec::new(),
        };
        for by in [&outsider, &clinician] {
            let refused = create_team(&f.store, by, input()).await.unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
        }
        let t = create_team(&f.store, &coordinator, input()).await.unwrap();
        assert_eq!(t.member_ids, [doctors[0].id]);

        let change = || TeamChange {
            leader_id: Some(doctors[1].id),
            member_ids: Some(ids(&doctors)),
            ..TeamChange::default()
        };
        for by in [&outsider, &clinician] {
            let refused = update_team(&f.store, by, t.id, change()).await.unwrap_err();
            assert!(matches!(refused, Error::Forbidden(_)), "{refused:?}");
        }
        for (bad, field) in [
            (
                TeamChange {
                    member_ids: Some(vec![stranger.id]),
                    ..TeamChange::default()
                },
                "member_ids",
            ),
            (
                TeamChange {
                    leader_id: Some(999_999),
                    ..TeamChange::default()
                },
                "leader_id",
            ),
            (
                TeamChange {
                    name: Some(" ".into()),
                    ..TeamChange::default()
                },
                "name",
            ),
        ] {
            let refused = update_team(&f.store, &f.admin, t.id, bad)
                .await
                .unwrap_err();
            assert!(
                matches!(&refused, Error::Invalid { field: f, .. } if f == field)
                    || matches!(&refused, Error::Store(crate::store::StoreError::Invalid { field: f, .. }) if *f == field),
                "{field}: {refused:?}"
            );
        }
        assert_eq!(
            team(&f.store, t.id).await.unwrap(),
            t,
            "nothing refused was written"
        );
        let changed = update_team(&f.store, &coordinator, t.id, change())
            .await
            .unwrap();
        assert_eq!(changed.leader_id, doctors[1].id);
        assert_eq!(changed.member_ids, ids(&doctors));

        // Another team's name is taken within the unit.
        let second = create_team(
            &f.store,
            &f.admin,
            TeamInput {
                name: "外科查房组".into(),
                ..input()
            },
        )
        .await
        .unwrap();
        let refused = update_team(
            &f.store,
            &f.admin,
            second.id,
            TeamChange {
                name: Some("内科查房组".into()),
                ..TeamChange::default()
            },
        )
        .await
        .unwrap_err();
        assert_eq!(refused.rule(), Some(Rule::AlreadyRegistered), "{refused:?}");
    }
}
