//! Pairings (对口帮扶关系): who supports whom, for which services, in which period.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{RegionPath, named_enum};

named_enum! {
    /// The remote services of the national plan (`004`, remote medicine section).
    Service {
        /// 远程会诊.
        Consult = "consult",
        /// 远程医学影像诊断.
        ImagingRead = "imaging_read",
        /// 远程病理诊断.
        PathologyRead = "pathology_read",
        /// 远程查房.
        WardRound = "ward_round",
        /// 远程继续教育.
        Teaching = "teaching",
    }
}

/// The services a pairing covers.
pub type Services = super::NameSet<Service>;

named_enum! {
    /// Whether a pairing stands: its period says when it applies, an administrator may end
    /// it early.
    PairingStatus {
        /// In force for its period.
        Active = "active",
        /// Ended by an administrator, with a reason; its history is a record.
        Ended = "ended",
    }
}

named_enum! {
    /// Where a pairing stands on a given day, from its period and status (未开始 / 有效 /
    /// 已到期 / 已终止): only one in force supports bookings.
    Standing {
        /// Its period has not begun.
        NotStarted = "not_started",
        /// Inside its period and not ended.
        InForce = "in_force",
        /// Its period is over.
        Expired = "expired",
        /// Ended early by an administrator, with a reason.
        Ended = "ended",
    }
}

/// The supporting side of a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Supporter {
    /// A whole institution, typically a tertiary hospital.
    Institution(i64),
    /// An expert team (a leader and members, `003`, `004`).
    Team(i64),
    /// One dispatched clinician (`000`).
    Clinician(i64),
}

impl Supporter {
    /// The three nullable columns that store it: institution, team, clinician.
    pub fn columns(self) -> (Option<i64>, Option<i64>, Option<i64>) {
        match self {
            Self::Institution(id) => (Some(id), None, None),
            Self::Team(id) => (None, Some(id), None),
            Self::Clinician(id) => (None, None, Some(id)),
        }
    }

    /// The inverse of [`Supporter::columns`]; `None` unless exactly one column is set.
    pub fn from_columns(i: Option<i64>, t: Option<i64>, c: Option<i64>) -> Option<Self> {
        match (i, t, c) {
            (Some(id), None, None) => Some(Self::Institution(id)),
            (None, Some(id), None) => Some(Self::Team(id)),
            (None, None, Some(id)) => Some(Self::Clinician(id)),
            _ => None,
        }
    }
}

/// The supported side: one institution, or every institution of a region
/// ("台山市卫生计生系统", the Taishan health system).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Supported {
    /// One institution, by id.
    Institution(i64),
    /// All institutions whose region path lies inside this one.
    #[schema(value_type = String)]
    Region(RegionPath),
}

/// A pairing as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Pairing {
    /// Pairing id, stable across versions.
    pub id: i64,
    /// Current version, starting at 1.
    pub version: i32,
    /// Supporting side.
    pub supporter: Supporter,
    /// Supported side.
    pub supported: Supported,
    /// Services covered.
    #[schema(value_type = Vec<Service>)]
    pub services: Services,
    /// First day of the period.
    pub valid_from: NaiveDate,
    /// Last day of the period, inclusive.
    pub valid_to: NaiveDate,
    /// Whether an administrator has ended it.
    pub status: PairingStatus,
}

impl Pairing {
    /// Whether the pairing's period has begun on `today` and not yet ended, so that a
    /// change needs a stated reason (`004`: fixed for the period).
    pub fn in_period(&self, today: NaiveDate) -> bool {
        self.valid_from <= today && today <= self.valid_to
    }

    /// Where the pairing stands on `today` (a day in China).
    pub fn standing(&self, today: NaiveDate) -> Standing {
        if self.status == PairingStatus::Ended {
            Standing::Ended
        } else if today < self.valid_from {
            Standing::NotStarted
        } else if today > self.valid_to {
            Standing::Expired
        } else {
            Standing::InForce
        }
    }
}

/// One version of a pairing, with who made it, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PairingVersion {
    /// The pairing as it was in this version.
    #[serde(flatten)]
    pub pairing: Pairing,
    /// `created`, `changed` or `ended`.
    pub action: String,
    /// The administrator who made it; `None` for the seed import.
    pub changed_by: Option<i64>,
    /// When.
    pub changed_at: DateTime<Utc>,
    /// Why; required for any change inside the period.
    pub reason: Option<String>,
}

/// A pairing's training target for one year (`004`: 每年为受援医院培训至少3名骨干医师或其他医学
/// 专业技术人员): how many trainees of the supported side must each reach how many hours of
/// training in the year. The responsibility letter of a pairing sets its own; a year it
/// does not set takes the program's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TrainingTarget {
    /// The year, by China's calendar.
    pub year: i32,
    /// Trainees to train.
    pub trainees: u32,
    /// Hours of training in the year at which a trainee counts as trained.
    pub hours_each: u32,
    /// `pairing` when set for this pairing, `program` for the defaults.
    pub source: TargetSource,
    /// Who set it, for a pairing's own.
    pub set_by: Option<i64>,
    /// When.
    pub set_at: Option<DateTime<Utc>>,
}

/// Where a [`TrainingTarget`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TargetSource {
    /// The pairing's responsibility letter.
    Pairing,
    /// The program's defaults (`[program]` in the configuration).
    Program,
}

/// An expert team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Team {
    /// Team id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// The unit the team belongs to.
    pub institution_id: i64,
    /// Team leader (团队长).
    pub leader_id: i64,
    /// Members, the leader included.
    pub member_ids: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_store_in_a_fixed_order() {
        let s = Services::parse("teaching,consult").unwrap();
        assert_eq!(s.to_stored(), "consult,teaching");
        assert!(s.contains(Service::Consult) && !s.contains(Service::ImagingRead));
        assert!(Services::parse("").is_err());
        assert!(Services::parse("consult,surgery").is_err());
    }

    #[test]
    fn a_pairing_stands_by_its_period_unless_it_was_ended() {
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut p = Pairing {
            id: 1,
            version: 1,
            supporter: Supporter::Institution(1),
            supported: Supported::Institution(2),
            services: Services::parse("consult").unwrap(),
            valid_from: day("2016-01-01"),
            valid_to: day("2018-12-31"),
            status: PairingStatus::Active,
        };
        assert_eq!(p.standing(day("2015-12-31")), Standing::NotStarted);
        assert_eq!(p.standing(day("2016-01-01")), Standing::InForce);
        assert_eq!(p.standing(day("2018-12-31")), Standing::InForce);
        assert_eq!(p.standing(day("2019-01-01")), Standing::Expired);
        assert_eq!(p.standing(day("2026-12-06")), Standing::Expired);
        p.status = PairingStatus::Ended;
        assert_eq!(p.standing(day("2017-06-01")), Standing::Ended);
    }

    #[test]
    fn a_supporter_is_exactly_one_column() {
        for s in [
            Supporter::Institution(1),
            Supporter::Team(2),
            Supporter::Clinician(3),
        ] {
            let (i, t, c) = s.columns();
            assert_eq!(Supporter::from_columns(i, t, c), Some(s));
        }
        assert_eq!(Supporter::from_columns(Some(1), Some(2), None), None);
        assert_eq!(Supporter::from_columns(None, None, None), None);
    }
}
