//! Clinicians and the rank of their professional title.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use super::named_enum;

named_enum! {
    /// The rank of a professional title (职称). Rules compare ranks, never title strings:
    /// 主任医师, 主任中医师 and their rural forms are all senior. Ordered low to high.
    TitleRank {
        /// 初级: 医师, 医士, 中医师, 住院医师.
        Junior = "junior",
        /// 中级: 主治医师, 主治中医师 (the roster also writes plain 主治).
        Intermediate = "intermediate",
        /// 副高: 副主任医师, 副主任中医师, 农村基层卫生副主任医师.
        DeputySenior = "deputy_senior",
        /// 正高: 主任医师, 主任中医师.
        Senior = "senior",
    }
}

impl TitleRank {
    /// The rank of a title as written in Chinese, in its Western, TCM or rural form.
    ///
    /// ```
    /// use duikou::domain::TitleRank;
    /// assert_eq!(TitleRank::of_title("农村基层卫生副主任医师"), Some(TitleRank::DeputySenior));
    /// assert_eq!(TitleRank::of_title("主治"), Some(TitleRank::Intermediate));
    /// assert_eq!(TitleRank::of_title("护士长"), None);
    /// ```
    pub fn of_title(title: &str) -> Option<Self> {
        let t: String = title.chars().filter(|c| !c.is_whitespace()).collect();
        if t.contains("副主任") {
            Some(Self::DeputySenior)
        } else if t.contains("主任") {
            Some(Self::Senior)
        } else if t.contains("主治") {
            Some(Self::Intermediate)
        } else if t.ends_with("医师") || t.ends_with("医士") {
            Some(Self::Junior)
        } else {
            None
        }
    }
}

named_enum! {
    /// Sex as recorded in the rosters.
    Sex {
        /// 男.
        Male = "M",
        /// 女.
        Female = "F",
    }
}

impl Sex {
    /// Parses 男 / 女 as printed in the rosters, or M / F.
    pub fn of_roster(s: &str) -> Option<Self> {
        match s.trim() {
            "男" | "M" => Some(Self::Male),
            "女" | "F" => Some(Self::Female),
            _ => None,
        }
    }
}

named_enum! {
    /// What keeps a clinician from being the consultant of a remote consultation (the
    /// national remote-medicine rules: a licensed physician with at least three years of
    /// independent practice, of the title the request asks for).
    QualificationGap {
        /// No practising licence number on record.
        NoLicence = "no_licence",
        /// Fewer than three full years of independent practice on record.
        UnderThreeYears = "under_three_years",
        /// A lower title rank than the request asks for.
        BelowTitle = "below_title",
    }
}

/// A clinician of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Clinician {
    /// Registry id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Sex, where known.
    pub sex: Option<Sex>,
    /// The clinician's unit.
    pub institution_id: i64,
    /// The title as written, e.g. 主治中医师.
    pub title: String,
    /// The rank the title maps to.
    pub title_rank: TitleRank,
    /// Specialty as written.
    pub specialty: String,
    /// Practising licence number (执业证书编码), where recorded.
    pub licence_number: Option<String>,
    /// The day independent practice began, where recorded: years of practice count from
    /// it.
    pub practice_since: Option<NaiveDate>,
}

impl Clinician {
    /// Full years of independent practice on `today` (a day in China), where recorded: a
    /// clinician who began on 2023-03-01 has three years on 2026-03-01, not the day before.
    pub fn practice_years(&self, today: NaiveDate) -> Option<i32> {
        self.practice_since.map(|since| {
            let years = today.year() - since.year();
            if (today.month(), today.day()) < (since.month(), since.day()) {
                years - 1
            } else {
                years
            }
        })
    }

    /// What keeps the clinician from consulting on `today` (a day in China) for a request
    /// that asks for `min_title` or higher; empty when they qualify.
    pub fn qualification_gaps(
        &self,
        min_title: Option<TitleRank>,
        today: NaiveDate,
    ) -> Vec<QualificationGap> {
        let mut gaps = Vec::new();
        if self
            .licence_number
            .as_deref()
            .is_none_or(|l| l.trim().is_empty())
        {
            gaps.push(QualificationGap::NoLicence);
        }
        if self.practice_years(today).is_none_or(|y| y < 3) {
            gaps.push(QualificationGap::UnderThreeYears);
        }
        if min_title.is_some_and(|min| self.title_rank < min) {
            gaps.push(QualificationGap::BelowTitle);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    /// An attending doctor, unlicensed, who began practising on 2023-03-01.
    fn attending() -> Clinician {
        Clinician {
            id: 1,
            name: "李医生".into(),
            sex: None,
            institution_id: 1,
            title: "主治医师".into(),
            title_rank: TitleRank::Intermediate,
            specialty: "内科".into(),
            licence_number: None,
            practice_since: Some(day("2023-03-01")),
        }
    }

    #[test]
    fn years_of_practice_are_full_years_counted_from_the_day_practice_began() {
        let mut c = attending();
        assert_eq!(c.practice_years(day("2026-02-28")), Some(2));
        assert_eq!(c.practice_years(day("2026-03-01")), Some(3));
        assert_eq!(c.practice_years(day("2023-03-01")), Some(0));
        c.practice_since = Some(day("2020-02-29"));
        assert_eq!(c.practice_years(day("2023-02-28")), Some(2));
        assert_eq!(c.practice_years(day("2023-03-01")), Some(3));
        c.practice_since = None;
        assert_eq!(c.practice_years(day("2026-03-01")), None);
    }

    #[test]
    fn a_consultant_is_licensed_with_three_years_and_the_title_asked_for() {
        let mut c = Clinician {
            licence_number: Some("110440700000001".into()),
            ..attending()
        };
        let today = day("2026-03-01");
        assert!(c.qualification_gaps(None, today).is_empty());
        assert!(
            c.qualification_gaps(Some(TitleRank::Intermediate), today)
                .is_empty()
        );
        assert_eq!(
            c.qualification_gaps(Some(TitleRank::DeputySenior), today),
            [QualificationGap::BelowTitle]
        );
        assert_eq!(
            c.qualification_gaps(None, day("2026-02-28")),
            [QualificationGap::UnderThreeYears]
        );
        c.licence_number = Some(" ".into());
        c.practice_since = None;
        assert_eq!(
            c.qualification_gaps(None, today),
            [
                QualificationGap::NoLicence,
                QualificationGap::UnderThreeYears
            ]
        );
    }

    #[test]
    fn every_title_in_the_roster_has_a_rank() {
        for (title, rank) in [
            ("主任医师", TitleRank::Senior),
            ("主任中医师", TitleRank::Senior),
            ("副主任医师", TitleRank::DeputySenior),
            ("副主任中医师", TitleRank::DeputySenior),
            ("农村基层卫生副主任医师", TitleRank::DeputySenior),
            ("主治医师", TitleRank::Intermediate),
            ("主治中医师", TitleRank::Intermediate),
            ("主治", TitleRank::Intermediate),
            ("医师", TitleRank::Junior),
            ("中医师", TitleRank::Junior),
            ("医士", TitleRank::Junior),
        ] {
            assert_eq!(TitleRank::of_title(title), Some(rank), "{title}");
        }
    }

    #[test]
    fn ranks_compare_in_seniority_order() {
        assert!(TitleRank::Senior > TitleRank::DeputySenior);
        assert!(TitleRank::DeputySenior > TitleRank::Intermediate);
        assert!(TitleRank::Intermediate > TitleRank::Junior);
    }

    #[test]
    fn unknown_titles_have_no_rank() {
        assert_eq!(TitleRank::of_title(""), None);
        assert_eq!(TitleRank::of_title("护师"), None);
    }
}
