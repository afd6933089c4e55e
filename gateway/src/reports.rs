//! Each pairing against the program's targets, for a quarter or a year: requests by state,
//! time to accept and to a signed opinion, sessions, teaching hours and trainees, and the
//! villages served in each quarter (by a remote session or an on-site visit).
//!
//! Targets: every village is served at least once a quarter (`000`: 每条行政村每季度不少于
//! 1次; `003`: at least every two months); each pairing trains at least three backbone
//! clinicians a year (`004`). A trainee counts as trained once their live attendance of
//! the supporter's teaching in the year reaches the pairing's hours (its own target for
//! the year, or the program's defaults); any minute of attendance is not training.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::{RequestState, attended_hours, china};
use crate::config::ProgramConfig;
use crate::domain::{HUANCUI, Level, Pairing, Role, Supported, Supporter, TrainingTarget, User};
use crate::registry;
use crate::rules::Error;
use crate::store::{InstitutionFilter, Store};

/// A quarter (`2017-Q2`) or a year (`2017`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    year: i32,
    quarter: Option<u32>,
}

impl Period {
    /// Parses `2017` or `2017-Q2`.
    pub fn parse(s: &str) -> Option<Self> {
        let (year, quarter) = match s.split_once("-Q") {
            Some((y, q)) => (
                y,
                Some(q.parse::<u32>().ok().filter(|q| (1..=4).contains(q))?),
            ),
            None => (s, None),
        };
        let year = year
            .parse::<i32>()
            .ok()
            .filter(|y| (2000..=2100).contains(y))?;
        Some(Self { year, quarter })
    }

    /// The quarters it spans.
    fn quarters(self) -> Vec<Period> {
        match self.quarter {
            Some(_) => vec![self],
            None => (1..=4)
                .map(|q| Period {
                    year: self.year,
                    quarter: Some(q),
                })
                .collect(),
        }
    }

    /// First and last day.
    fn days(self) -> (NaiveDate, NaiveDate) {
        let (m0, m1) = match self.quarter {
            Some(q) => (3 * q - 2, 3 * q),
            None => (1, 12),
        };
        let first = NaiveDate::from_ymd_opt(self.year, m0, 1).expect("a valid month");
        let next = if m1 == 12 {
            NaiveDate::from_ymd_opt(self.year + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(self.year, m1 + 1, 1)
        }
        .expect("a valid month");
        (first, next.pred_opt().expect("a day before"))
    }

    /// `[start, end)` in UTC, by China's calendar.
    fn instants(self) -> (DateTime<Utc>, DateTime<Utc>) {
        let (first, last) = self.days();
        let at = |d: NaiveDate| {
            d.and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(china()).single())
                .map(|t| t.with_timezone(&Utc))
                .expect("China has no gaps")
        };
        (at(first), at(last.succ_opt().expect("a next day")))
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.quarter {
            Some(q) => write!(f, "{}-Q{q}", self.year),
            None => write!(f, "{}", self.year),
        }
    }
}

/// A village in a report.
#[derive(Debug, Serialize, ToSchema)]
pub struct VillageService {
    /// The station.
    pub village_id: i64,
    /// Its name.
    pub name: String,
    /// Quarter by quarter.
    pub quarters: Vec<QuarterService>,
}

/// One village in one quarter.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuarterService {
    /// `2017-Q2`.
    pub quarter: String,
    /// On-site visits.
    pub visits: usize,
    /// Remote sessions held.
    pub sessions: usize,
    /// At least one of either.
    pub served: bool,
}

/// One target and whether it is met.
#[derive(Debug, Serialize, ToSchema)]
pub struct Target {
    /// A stable name of the rule, for clients' own wording: `village_quarterly`,
    /// `team_bimonthly`, `training_yearly`.
    pub code: &'static str,
    /// The rule.
    pub target: String,
    /// The document it comes from.
    pub source: String,
    /// What was achieved.
    pub actual: String,
    /// Met, not met, or `null` when it does not apply (no villages in the pairing).
    pub met: Option<bool>,
    /// What falls short, for pages to word in their language: the villages not served in
    /// a quarter, or visited with too long a gap.
    pub short: Vec<Shortfall>,
}

/// A village where a target falls short.
#[derive(Debug, Serialize, ToSchema)]
pub struct Shortfall {
    /// The station.
    pub village_id: i64,
    /// Its name.
    pub name: String,
    /// The quarter it was not served in (`2017-Q2`), for the quarterly target.
    pub quarter: Option<String>,
    /// The longest stretch in days without a visit, for the two-monthly one.
    pub days: Option<i64>,
}

/// The training of a year: who of the supported side attended how many hours of the
/// supporter's teaching, and who reached the target's hours.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingYear {
    /// The target it is counted against.
    pub target: TrainingTarget,
    /// Trainees who reached the target's hours.
    pub trained: usize,
    /// Every trainee who attended, most hours first.
    pub trainees: Vec<TraineeHours>,
}

/// One trainee's hours of training in a year.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraineeHours {
    /// The trainee's account.
    pub user_id: i64,
    /// Their name.
    pub display_name: String,
    /// Their institution.
    pub institution_id: i64,
    /// Hours attended live, inside the sessions' times.
    pub hours: f64,
    /// Whether the hours reach the target's.
    pub trained: bool,
}

/// A pairing against its targets for one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct PairingReport {
    /// The pairing.
    pub pairing_id: i64,
    /// `2017` or `2017-Q2`.
    pub period: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// Requests submitted in the period, by state.
    pub requests_by_state: BTreeMap<String, i64>,
    /// Median hours from submission to acceptance.
    pub median_hours_to_accept: Option<f64>,
    /// Median hours from submission to the first signed opinion.
    pub median_hours_to_opinion: Option<f64>,
    /// Remote sessions held for the supported institutions.
    pub sessions_held: usize,
    /// Remote ward rounds held by the supporter's teams for the supported institutions.
    pub ward_rounds: usize,
    /// Hours of teaching given by the supporter: sessions over by now and not cancelled.
    pub teaching_hours: f64,
    /// Trainees of the supported institutions who attended the supporter's teaching.
    pub trainees_attended: usize,
    /// Training in the year the period lies in, against the pairing's target.
    pub training: TrainingYear,
    /// The supported village stations, quarter by quarter.
    pub villages: Vec<VillageService>,
    /// The program's targets.
    pub targets: Vec<Target>,
}

/// The longest stretch in days without service between `first` and `last`, given the
/// days served.
fn longest_gap(first: NaiveDate, last: NaiveDate, served: &BTreeSet<NaiveDate>) -> i64 {
    let mut previous = first;
    let mut longest = 0;
    for day in served.range(first..=last).chain(std::iter::once(&last)) {
        longest = longest.max((*day - previous).num_days());
        previous = *day;
    }
    longest
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

fn framed(ids: impl IntoIterator<Item = i64>) -> String {
    let ids: Vec<String> = ids.into_iter().map(|i| i.to_string()).collect();
    format!(",{},", ids.join(","))
}

/// Whether `institution_id` is a side of pairing `p`: the supporter's institution, or
/// a supported institution.
async fn involves(store: &Store, p: &Pairing, institution_id: i64) -> Result<bool, Error> {
    if supporter_institution(store, p).await? == institution_id {
        return Ok(true);
    }
    Ok(match &p.supported {
        Supported::Institution(i) => *i == institution_id,
        Supported::Region(r) => store
            .institution(institution_id)
            .await?
            .is_some_and(|i| r.contains(&i.region)),
    })
}

/// The institution the supporter is or belongs to.
async fn supporter_institution(store: &Store, p: &Pairing) -> Result<i64, Error> {
    Ok(match p.supporter {
        Supporter::Institution(id) => id,
        Supporter::Clinician(id) => store
            .clinician(id)
            .await?
            .map(|c| c.institution_id)
            .unwrap_or_default(),
        Supporter::Team(id) => store
            .team(id)
            .await?
            .map(|t| t.institution_id)
            .unwrap_or_default(),
    })
}

/// Builds the report of pairing `id` for `period`, for `by`: administrators, and the
/// coordinators of either side. The training target is the pairing's own for the year, or
/// `defaults`.
pub async fn pairing_report(
    store: &Store,
    by: &User,
    defaults: &ProgramConfig,
    id: i64,
    period: Period,
) -> Result<PairingReport, Error> {
    let p = store
        .pairing(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("pairing {id}")))?;
    let coordinator_of_a_side =
        by.is(Role::Coordinator) && involves(store, &p, by.institution_id).await?;
    if !by.is(Role::Admin) && !coordinator_of_a_side {
        return Err(Error::forbidden(
            "reports are for administrators and the coordinators of either side",
        ));
    }
    let (from, to) = period.instants();
    let (first, last) = period.days();

    let requests_by_state: BTreeMap<String, i64> = store
        .report_states(id, from, to)
        .await?
        .into_iter()
        .collect();
    let mut submitted: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let (mut to_accept, mut to_opinion) = (Vec::new(), Vec::new());
    let mut opinion_seen = BTreeSet::new();
    for (request, state, at) in store.report_steps(id, from, to).await? {
        let hours = |s: &DateTime<Utc>| (at - *s).num_seconds() as f64 / 3600.0;
        match state {
            RequestState::Submitted => {
                submitted.insert(request, at);
            }
            RequestState::Accepted => to_accept.extend(submitted.get(&request).map(hours)),
            RequestState::OpinionSigned if opinion_seen.insert(request) => {
                to_opinion.extend(submitted.get(&request).map(hours))
            }
            _ => {}
        }
    }

    // The supported institutions, and the village stations among them.
    let supported = match &p.supported {
        Supported::Institution(i) => store.institution(*i).await?.into_iter().collect::<Vec<_>>(),
        Supported::Region(r) => {
            store
                .institutions(&InstitutionFilter {
                    region: Some(r.as_str().to_owned()),
                    limit: 100_000,
                    ..Default::default()
                })
                .await?
        }
    };
    let supported_ids = framed(supported.iter().map(|i| i.id));
    let villages: Vec<_> = supported
        .iter()
        .filter(|i| i.level == Level::VillageStation)
        .collect();

    let held = store.report_sessions_held(&supported_ids, from, to).await?;
    let visits = store
        .visits(&framed(villages.iter().map(|v| v.id)), first, last)
        .await?;
    let quarter_of = |d: NaiveDate| Period {
        year: d.year(),
        quarter: Some((d.month() - 1) / 3 + 1),
    };
    let mut village_rows = Vec::new();
    let mut unserved: Vec<Shortfall> = Vec::new();
    for v in &villages {
        let mut quarters = Vec::new();
        for q in period.quarters() {
            let n_visits = visits
                .iter()
                .filter(|x| x.village_id == v.id && quarter_of(x.visit_date) == q)
                .count();
            let n_sessions = held
                .iter()
                .filter(|(inst, at)| {
                    *inst == v.id && quarter_of(at.with_timezone(&china()).date_naive()) == q
                })
                .count();
            let served = n_visits + n_sessions > 0;
            if !served {
                unserved.push(Shortfall {
                    village_id: v.id,
                    name: v.name.clone(),
                    quarter: Some(q.to_string()),
                    days: None,
                });
            }
            quarters.push(QuarterService {
                quarter: q.to_string(),
                visits: n_visits,
                sessions: n_sessions,
                served,
            });
        }
        village_rows.push(VillageService {
            village_id: v.id,
            name: v.name.clone(),
            quarters,
        });
    }

    // Teaching by the supporter's institution, attended by trainees of the supported ones;
    // the yearly target counts the whole year the period lies in.
    let presenter = supporter_institution(store, &p).await?;
    let year = Period {
        year: period.year,
        quarter: None,
    };
    let (year_from, year_to) = year.instants();
    let supported_set: BTreeSet<i64> = supported.iter().map(|i| i.id).collect();
    let mut teaching_hours = 0.0;
    let mut attended = BTreeSet::new();
    let mut year_hours: BTreeMap<i64, f64> = BTreeMap::new();
    for s in store
        .teaching_sessions(Some(&framed([presenter])), year_from, year_to)
        .await?
    {
        let in_period = s.starts_at >= from && s.starts_at < to;
        // Hours taught are those of sessions that took place: over, and not cancelled.
        if in_period && s.cancelled_at.is_none() && s.ends_at <= store.now() {
            teaching_hours += (s.ends_at - s.starts_at).num_seconds() as f64 / 3600.0;
        }
        let mut by_user: HashMap<i64, Vec<_>> = HashMap::new();
        for a in store.attendance(None, Some(s.id)).await? {
            by_user
                .entry(a.user_id)
                .or_default()
                .push((a.joined_at, a.left_at));
        }
        for (user, stretches) in by_user {
            let hours = attended_hours(s.starts_at, s.ends_at, &stretches);
            if hours > 0.0 {
                *year_hours.entry(user).or_default() += hours;
                if in_period {
                    attended.insert(user);
                }
            }
        }
    }
    let target = registry::training_target(store, defaults, &p, period.year).await?;
    let mut trainees = Vec::new();
    for (user, hours) in year_hours {
        let Some(u) = store.user(user).await? else {
            continue;
        };
        if !supported_set.contains(&u.institution_id) {
            attended.remove(&user);
            continue;
        }
        trainees.push(TraineeHours {
            user_id: user,
            display_name: u.display_name,
            institution_id: u.institution_id,
            hours,
            trained: hours >= f64::from(target.hours_each),
        });
    }
    trainees.sort_by(|a, b| b.hours.total_cmp(&a.hours));
    let trained = trainees.iter().filter(|t| t.trained).count();

    let mut ward_rounds = 0;
    for round in store.ward_rounds(&supported_ids, ",", from, to).await? {
        if store
            .team(round.team_id)
            .await?
            .is_some_and(|t| t.institution_id == presenter)
        {
            ward_rounds += 1;
        }
    }

    let village_target = Target {
        code: "village_quarterly",
        target: "every village is served at least once a quarter".into(),
        source: "000".into(),
        actual: if villages.is_empty() {
            "no village stations in this pairing".into()
        } else if unserved.is_empty() {
            format!("all {} villages served in every quarter", villages.len())
        } else {
            let names: Vec<String> = unserved
                .iter()
                .map(|u| format!("{} in {}", u.name, u.quarter.as_deref().unwrap_or_default()))
                .collect();
            format!("not served: {}", names.join(", "))
        },
        met: (!villages.is_empty()).then_some(unserved.is_empty()),
        short: unserved,
    };
    // 003: in Huancui, the unit or team paired with a village visits it at least every two
    // months (61 days); elsewhere, an expert team does.
    let huancui = villages
        .iter()
        .any(|v| v.region.as_str().starts_with(HUANCUI));
    let bimonthly = huancui || matches!(p.supporter, Supporter::Team(_));
    let team_target = if bimonthly && !villages.is_empty() {
        let until = last.min(crate::registry::today_in_china());
        let mut late = Vec::new();
        for v in &villages {
            let mut days: BTreeSet<NaiveDate> = visits
                .iter()
                .filter(|x| x.village_id == v.id)
                .map(|x| x.visit_date)
                .collect();
            days.extend(
                held.iter()
                    .filter(|(i, _)| *i == v.id)
                    .map(|(_, at)| at.with_timezone(&china()).date_naive()),
            );
            let gap = longest_gap(first, until, &days);
            if gap > 61 {
                late.push(Shortfall {
                    village_id: v.id,
                    name: v.name.clone(),
                    quarter: None,
                    days: Some(gap),
                });
            }
        }
        Some(Target {
            code: "team_bimonthly",
            target: "each village is visited at least every two months".into(),
            source: "003".into(),
            actual: if late.is_empty() {
                "every village within two months".into()
            } else {
                let names: Vec<String> = late
                    .iter()
                    .map(|l| {
                        format!(
                            "{} ({} days without a visit)",
                            l.name,
                            l.days.unwrap_or_default()
                        )
                    })
                    .collect();
                names.join(", ")
            },
            met: Some(late.is_empty()),
            short: late,
        })
    } else {
        None
    };
    let training_target = Target {
        code: "training_yearly",
        target: format!(
            "at least {} trainees a year, each reaching {} hours of training",
            target.trainees, target.hours_each
        ),
        source: "004".into(),
        actual: format!(
            "{trained} of {} reached {} hours in {}",
            target.trainees, target.hours_each, period.year
        ),
        met: Some(trained >= target.trainees as usize),
        short: Vec::new(),
    };
    Ok(PairingReport {
        pairing_id: id,
        period: period.to_string(),
        from: first,
        to: last,
        requests_by_state,
        median_hours_to_accept: median(to_accept),
        median_hours_to_opinion: median(to_opinion),
        sessions_held: held.len(),
        ward_rounds,
        teaching_hours,
        trainees_attended: attended.len(),
        training: TrainingYear {
            target,
            trained,
            trainees,
        },
        villages: village_rows,
        targets: [Some(village_target), Some(training_target), team_target]
            .into_iter()
            .flatten()
            .collect(),
    })
}

impl PairingReport {
    /// The report as CSV: one `metric,value,met` row per figure.
    pub fn to_csv(&self) -> Result<String, Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let mut row =
            |metric: &str, value: String, met: &str| w.write_record([metric, &value, met]);
        let csv_err = |e: csv::Error| Error::Internal(e.into());
        row("metric", "value".into(), "met").map_err(csv_err)?;
        row("pairing_id", self.pairing_id.to_string(), "").map_err(csv_err)?;
        row("period", self.period.clone(), "").map_err(csv_err)?;
        for (state, n) in &self.requests_by_state {
            row(&format!("requests_{state}"), n.to_string(), "").map_err(csv_err)?;
        }
        let opt = |v: Option<f64>| v.map(|h| format!("{h:.2}")).unwrap_or_default();
        row(
            "median_hours_to_accept",
            opt(self.median_hours_to_accept),
            "",
        )
        .map_err(csv_err)?;
        row(
            "median_hours_to_opinion",
            opt(self.median_hours_to_opinion),
            "",
        )
        .map_err(csv_err)?;
        row("sessions_held", self.sessions_held.to_string(), "").map_err(csv_err)?;
        row("ward_rounds", self.ward_rounds.to_string(), "").map_err(csv_err)?;
        row("teaching_hours", format!("{:.2}", self.teaching_hours), "").map_err(csv_err)?;
        row("trainees_attended", self.trainees_attended.to_string(), "").map_err(csv_err)?;
        let training = &self.training;
        for t in &training.trainees {
            row(
                &format!(
                    "training hours {} ({})",
                    t.display_name, training.target.year
                ),
                format!("{:.2}", t.hours),
                if t.trained { "yes" } else { "no" },
            )
            .map_err(csv_err)?;
        }
        for v in &self.villages {
            for q in &v.quarters {
                let met = if q.served { "yes" } else { "no" };
                row(
                    &format!("served {} {}", v.name, q.quarter),
                    (q.visits + q.sessions).to_string(),
                    met,
                )
                .map_err(csv_err)?;
            }
        }
        for t in &self.targets {
            let met = match t.met {
                Some(true) => "yes",
                Some(false) => "no",
                None => "",
            };
            row(
                &format!("target: {} ({})", t.target, t.source),
                t.actual.clone(),
                met,
            )
            .map_err(csv_err)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
        String::from_utf8(bytes).map_err(|e| Error::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_span_china_calendar_days() {
        let q = Period::parse("2017-Q2").unwrap();
        assert_eq!(
            q.days(),
            (
                NaiveDate::from_ymd_opt(2017, 4, 1).unwrap(),
                NaiveDate::from_ymd_opt(2017, 6, 30).unwrap()
            )
        );
        assert_eq!(q.instants().0.to_rfc3339(), "2017-03-31T16:00:00+00:00");
        assert_eq!(Period::parse("2018").unwrap().quarters().len(), 4);
        for bad in ["2017-Q5", "17", "2017-Q", "Q2", ""] {
            assert!(Period::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_longest_gap_counts_from_the_period_start_to_its_end() {
        let d = |m: u32, day: u32| NaiveDate::from_ymd_opt(2020, m, day).unwrap();
        let served: BTreeSet<NaiveDate> = [d(2, 1), d(3, 1)].into_iter().collect();
        assert_eq!(
            longest_gap(d(1, 1), d(6, 30), &served),
            121,
            "March to the end of June"
        );
        assert_eq!(longest_gap(d(1, 1), d(3, 31), &served), 31);
        assert_eq!(longest_gap(d(1, 1), d(1, 31), &BTreeSet::new()), 30);
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
