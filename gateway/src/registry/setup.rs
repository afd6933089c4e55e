//! The set-up checklist: what the program still lacks before a county doctor can book
//! with their supporter, computed from the data each time it is asked for. Each step
//! names the management page that fixes it. An administrator sees the whole program's;
//! a coordinator the steps of the pairings in force their institution is a side of.
//!
//! A step is judged over the pairings in force today (in China, by the store's clock):
//! a program whose pairings have all expired has nothing bookable, whatever else it has.

use std::collections::{BTreeSet, HashSet};

use serde::Serialize;
use utoipa::ToSchema;

use crate::booking::china;
use crate::domain::{
    Institution, Pairing, Role, Service, Standing, Supported, Supporter, User, named_enum,
};
use crate::rules::Error;
use crate::store::{ClinicianFilter, InstitutionFilter, PairingFilter, Store};

named_enum! {
    /// A step of the set-up.
    SetupStep {
        /// A pairing in force today.
        PairingInForce = "pairing_in_force",
        /// A consultant of a supporting side who qualifies (licence, three years of
        /// practice) for a pairing with remote consultation.
        QualifiedConsultant = "qualified_consultant",
        /// Such a consultant has published weekly availability.
        Availability = "availability",
        /// Such a consultant has an account.
        ConsultantAccount = "consultant_account",
        /// A supported institution has a clinician's account to book with.
        RequesterAccount = "requester_account",
        /// A supporting side of an imaging pairing has a radiologist's account.
        RadiologistAccount = "radiologist_account",
        /// A supported side of an imaging pairing has a DICOM node to send from.
        DicomNode = "dicom_node",
        /// Every supporting side of an imaging pairing has an imaging destination.
        ImagingDestination = "imaging_destination",
    }
}

/// One step and whether it is done.
#[derive(Debug, Serialize, ToSchema)]
pub struct SetupItem {
    /// Which.
    pub step: SetupStep,
    /// Whether the data already has it.
    pub done: bool,
    /// The management page that does it.
    pub link: &'static str,
}

/// The checklist of `by`: administrators the program's, coordinators their institution's.
pub async fn checklist(store: &Store, by: &User) -> Result<Vec<SetupItem>, Error> {
    if !by.is(Role::Admin) && !by.is(Role::Coordinator) {
        return Err(Error::forbidden(
            "the set-up is for administrators and coordinators",
        ));
    }
    let today = store.now().with_timezone(&china()).date_naive();
    let institutions = store
        .institutions(&InstitutionFilter {
            limit: i64::MAX,
            ..Default::default()
        })
        .await?;
    let mut in_force = Vec::new();
    for p in store
        .pairings(&PairingFilter {
            date: Some(today),
            limit: i64::MAX,
            ..Default::default()
        })
        .await?
    {
        if p.standing(today) != Standing::InForce {
            continue;
        }
        let supporter = supporter_institution(store, &p.supporter).await?;
        let supported = supported_institutions(&p.supported, &institutions);
        let mine = by.is(Role::Admin)
            || supporter == Some(by.institution_id)
            || supported.contains(&by.institution_id);
        if mine {
            in_force.push(Side {
                pairing: p,
                supporter,
                supported,
            });
        }
    }
    let sides = |service: Service| {
        in_force
            .iter()
            .filter(move |s| s.pairing.services.contains(service))
    };
    let users = store.users(None).await?;
    let active = |u: &&User| !u.disabled;

    // Consultants: the qualified clinicians of the supporting sides of consultations.
    let mut consultants = Vec::new();
    for side in sides(Service::Consult) {
        let candidates = match side.pairing.supporter {
            Supporter::Clinician(id) => store.clinician(id).await?.into_iter().collect(),
            _ => match side.supporter {
                Some(institution_id) => {
                    store
                        .clinicians(&ClinicianFilter {
                            institution_id: Some(institution_id),
                            limit: i64::MAX,
                            ..Default::default()
                        })
                        .await?
                }
                None => Vec::new(),
            },
        };
        consultants.extend(
            candidates
                .into_iter()
                .filter(|c| c.qualification_gaps(None, today).is_empty()),
        );
    }
    let mut published = false;
    for c in &consultants {
        if !store.availability(c.id).await?.is_empty() {
            published = true;
            break;
        }
    }
    let consultant_ids: HashSet<i64> = consultants.iter().map(|c| c.id).collect();
    let consultant_account = users
        .iter()
        .filter(active)
        .any(|u| u.clinician_id.is_some_and(|c| consultant_ids.contains(&c)));
    let requesting: HashSet<i64> = in_force
        .iter()
        .flat_map(|s| s.supported.iter().copied())
        .collect();
    let requester_account = users
        .iter()
        .filter(active)
        .any(|u| u.is(Role::Clinician) && requesting.contains(&u.institution_id));

    let imaging: Vec<&Side> = sides(Service::ImagingRead).collect();
    let reading: BTreeSet<i64> = imaging.iter().filter_map(|s| s.supporter).collect();
    let radiologist_account = users
        .iter()
        .filter(active)
        .any(|u| u.is(Role::Radiologist) && reading.contains(&u.institution_id));
    let mut destinations = !reading.is_empty();
    for id in &reading {
        if store.destination(*id).await?.is_none() {
            destinations = false;
            break;
        }
    }
    let sending: HashSet<i64> = imaging
        .iter()
        .flat_map(|s| s.supported.iter().copied())
        .collect();
    let dicom_node = store
        .dicom_nodes(None)
        .await?
        .iter()
        .any(|n| sending.contains(&n.institution_id));

    let any_consult = sides(Service::Consult).next().is_some();
    let mut items = vec![
        item(
            SetupStep::PairingInForce,
            !in_force.is_empty(),
            "/manage/pairings",
        ),
        item(
            SetupStep::QualifiedConsultant,
            any_consult && !consultants.is_empty(),
            "/manage/clinicians",
        ),
        item(SetupStep::Availability, published, "/manage/availability"),
        item(
            SetupStep::ConsultantAccount,
            consultant_account,
            "/manage/accounts",
        ),
        item(
            SetupStep::RequesterAccount,
            requester_account,
            "/manage/accounts",
        ),
    ];
    // Imaging steps count once a pairing covers imaging reads.
    if !imaging.is_empty() {
        items.extend([
            item(
                SetupStep::RadiologistAccount,
                radiologist_account,
                "/manage/accounts",
            ),
            item(SetupStep::DicomNode, dicom_node, "/manage/imaging"),
            item(
                SetupStep::ImagingDestination,
                destinations,
                "/manage/imaging",
            ),
        ]);
    }
    Ok(items)
}

/// A pairing in force with the institutions on each side.
struct Side {
    pairing: Pairing,
    /// The supporting institution: itself, or the team's or clinician's unit.
    supporter: Option<i64>,
    /// The supported institutions: one, or every institution of a supported region.
    supported: Vec<i64>,
}

fn item(step: SetupStep, done: bool, link: &'static str) -> SetupItem {
    SetupItem { step, done, link }
}

async fn supporter_institution(store: &Store, s: &Supporter) -> Result<Option<i64>, Error> {
    Ok(match *s {
        Supporter::Institution(id) => Some(id),
        Supporter::Team(id) => store.team(id).await?.map(|t| t.institution_id),
        Supporter::Clinician(id) => store.clinician(id).await?.map(|c| c.institution_id),
    })
}

fn supported_institutions(s: &Supported, all: &[Institution]) -> Vec<i64> {
    match s {
        Supported::Institution(id) => vec![*id],
        Supported::Region(region) => all
            .iter()
            .filter(|i| region.contains(&i.region))
            .map(|i| i.id)
            .collect(),
    }
}
