//! Who may be assigned to answer a request: the supporting institution's clinicians who
//! qualify for it, best suited first, for the accept form to offer.

use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::slots::china;
use crate::domain::{Clinician, Role, TitleRank, User};
use crate::rules::{Error, Rule};
use crate::store::{ClinicianFilter, Store};
use crate::text::Text;

use super::steps::{answering_role, qualification_gaps};
use super::{Access, access, load};

/// A clinician who may be assigned to a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsultantCandidate {
    /// Clinician id, the `consultant_id` of acceptance.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Professional title as written.
    pub title: String,
    /// Its rank.
    pub title_rank: TitleRank,
    /// Specialty.
    pub specialty: String,
    /// Full years of independent practice on record.
    pub practice_years: Option<i32>,
    /// Whether the specialty is the one the request asks for.
    pub specialty_matches: bool,
}

/// Whether a clinician's specialty is the one asked for: either names the other
/// (心内科 and 心血管内科 do not match; 心内科 and 心内 do).
/// Whether clinician `c`, by the enabled accounts among `accounts`, holds `role` (a
/// clinician without an account counts as a clinician).
pub(super) fn answers_as(accounts: &[User], c: &Clinician, role: Role) -> bool {
    let theirs: Vec<&User> = accounts
        .iter()
        .filter(|u| u.clinician_id == Some(c.id) && !u.disabled)
        .collect();
    if theirs.is_empty() {
        role == Role::Clinician
    } else {
        theirs.iter().any(|u| u.is(role))
    }
}

fn matches_specialty(theirs: &str, asked: Option<&str>) -> bool {
    let fold = |s: &str| s.trim().to_lowercase();
    match asked.map(fold).filter(|a| !a.is_empty()) {
        Some(asked) => {
            let theirs = fold(theirs);
            !theirs.is_empty() && (theirs.contains(&asked) || asked.contains(&theirs))
        }
        None => false,
    }
}

/// The supporting institution's clinicians who qualify to answer request `id`: licensed,
/// three years of independent practice and the title asked for or higher (national
/// remote-medicine rules), in the role that answers its kind ([`answering_role`]:
/// radiologists read images, clinicians the rest; a clinician without an account counts
/// as a clinician). Ordered: the specialty asked for first, then higher rank, then more
/// years, then name. For the supporting side's coordinators and those who answer.
pub async fn consultants(
    store: &Store,
    caller: &User,
    id: i64,
) -> Result<Vec<ConsultantCandidate>, Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, "consultants").await?;
    let role = answering_role(r.kind);
    if side != Access::Supporter {
        return Err(Error::refused(
            Rule::WrongInstitution,
            None,
            Text::new(
                "problem.side.wrong",
                "the supporting institution chooses the consultant",
            ),
        ));
    }
    if !(caller.is(Role::Coordinator) || caller.is(role)) {
        return Err(Error::refused(
            Rule::WrongRole,
            None,
            Text::new(
                "problem.role.supporter",
                format!(
                    "the consultant is chosen by the supporting institution's coordinators and {}s",
                    role.as_str()
                ),
            )
            .arg_key("role", format!("role.{}", role.as_str())),
        ));
    }
    let staff = store
        .clinicians(&ClinicianFilter {
            institution_id: Some(r.supporter_institution_id),
            limit: 1000,
            ..Default::default()
        })
        .await?;
    let accounts = store.users(Some(r.supporter_institution_id)).await?;
    let answers = |c: &Clinician| answers_as(&accounts, c, role);
    let today = store.now().with_timezone(&china()).date_naive();
    let asked = r.content.specialty.as_deref();
    let mut list: Vec<ConsultantCandidate> = staff
        .into_iter()
        .filter(|c| qualification_gaps(c, r.content.min_title, today).is_empty() && answers(c))
        .map(|c| ConsultantCandidate {
            specialty_matches: matches_specialty(&c.specialty, asked),
            practice_years: c.practice_years(today),
            id: c.id,
            name: c.name,
            title: c.title,
            title_rank: c.title_rank,
            specialty: c.specialty,
        })
        .collect();
    list.sort_by(|a, b| {
        b.specialty_matches
            .cmp(&a.specialty_matches)
            .then(b.title_rank.cmp(&a.title_rank))
            .then(b.practice_years.cmp(&a.practice_years))
            .then(a.name.cmp(&b.name))
            .then(a.id.cmp(&b.id))
    });
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specialty_matches_when_either_names_the_other() {
        assert!(matches_specialty("心内科", Some("心内")));
        assert!(matches_specialty("Cardiology", Some("cardiology ")));
        assert!(!matches_specialty("放射科", Some("心内科")));
        assert!(!matches_specialty("心内科", None));
    }
}
