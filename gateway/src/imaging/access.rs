//! Who sees and manages what of the imaging relay, without HTTP.
//!
//! - A study is read (QIDO-RS, WADO-RS, the worklist) by the radiologists, clinicians and
//!   coordinators of the institution that sent it and of the one it was forwarded to. A
//!   study someone may not see is answered exactly as one that does not exist, and both
//!   the look and the refusal are audited.
//! - Instances are added to a study (STOW-RS) by those who read studies, and only to a
//!   study nobody holds yet or one their institution sees; a refusal is audited, and so is
//!   what an upload kept.
//! - An institution's DICOM destination and nodes are managed by its coordinators and by
//!   administrators.
//! - The forward queue is seen by the coordinators of the sending or receiving
//!   institution (their own forwards) and by administrators (all); only administrators see
//!   a forward's whole error, which names the address and what answered there.

use duikou_imaging::Uid;

use crate::domain::{Role, User};
use crate::rules::Error;
use crate::store::{ForwardFilter, ForwardView, Store, VisibleInstance};

/// The institution whose studies the caller reads, if the caller reads studies at all.
pub fn reader(caller: &User) -> Result<i64, Error> {
    if caller.is(Role::Radiologist) || caller.is(Role::Clinician) || caller.is(Role::Coordinator) {
        Ok(caller.institution_id)
    } else {
        Err(Error::forbidden(
            "radiologists, clinicians and coordinators of the sending or reading institution",
        ))
    }
}

/// The instances of `study` (and `series`) the caller may see; not found when there are
/// none, whether the study belongs to others, does not exist or is not even a UID.
/// Audited either way, with the UIDs asked for and the study's patient.
pub async fn study(
    store: &Store,
    caller: &User,
    study: &str,
    series: Option<&str>,
) -> Result<Vec<VisibleInstance>, Error> {
    let found = visible(store, caller, study, series).await?;
    audit_read(store, caller, "read", &[Some(study), series], &found, None).await?;
    if found.is_empty() {
        return Err(Error::NotFound(format!("study {study}")));
    }
    Ok(found)
}

/// The instances of `study` (and `series`) the caller may see, unaudited.
async fn visible(
    store: &Store,
    caller: &User,
    study: &str,
    series: Option<&str>,
) -> Result<Vec<VisibleInstance>, Error> {
    let institution = reader(caller)?;
    let uids = Uid::parse(study).and_then(|s| Ok((s, series.map(Uid::parse).transpose()?)));
    Ok(match &uids {
        Ok((study, series)) => {
            let series = series.as_ref().map(Uid::as_str);
            store
                .visible_instances(institution, Some(study.as_str()), series)
                .await?
        }
        Err(_) => Vec::new(),
    })
}

/// Audits `action` on the object the UIDs name (`uids`: study, series, instance, as
/// far as asked; one that is not a UID is named as such), allowed when `found` holds
/// something. A study someone may not see is recorded exactly as one that does not
/// exist. The patient is the one of what was found, when it is one patient.
async fn audit_read(
    store: &Store,
    caller: &User,
    action: &str,
    uids: &[Option<&str>],
    found: &[VisibleInstance],
    detail: Option<String>,
) -> Result<(), Error> {
    let patient = one_patient(found.iter().map(|i| i.indexed.patient_name.as_str()));
    let event = crate::audit::Event::by(caller, "study", action)
        .allowed(!found.is_empty())
        .patient(patient)
        .detail(detail);
    referring(event, uids).record(store).await
}

/// `event` naming the object by the UIDs given (study, series, instance, as far as
/// asked); one that is not a UID is named as such.
fn referring(event: crate::audit::Event, uids: &[Option<&str>]) -> crate::audit::Event {
    let reference = uids
        .iter()
        .map_while(|u| *u)
        .map(|u| {
            if Uid::parse(u).is_ok() {
                u
            } else {
                "(not a UID)"
            }
        })
        .collect::<Vec<_>>()
        .join("/");
    if reference.is_empty() {
        event
    } else {
        event.reference(reference)
    }
}

/// The one patient named, if all are the same and named at all.
fn one_patient<'a>(mut names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let first = names.next().filter(|p| !p.is_empty())?;
    names.all(|n| n == first).then_some(first)
}

/// What a search runs over: every instance the caller may see, or those of one study (and
/// series) as [`study`] finds them. Only a refusal is audited here; [`searched_audit`]
/// records the search with what it asked and found.
pub async fn searched(
    store: &Store,
    caller: &User,
    within: Option<&str>,
    series: Option<&str>,
) -> Result<Vec<VisibleInstance>, Error> {
    match within {
        None => Ok(store.visible_instances(reader(caller)?, None, None).await?),
        Some(one) => {
            let found = visible(store, caller, one, series).await?;
            if found.is_empty() {
                audit_read(store, caller, "search", &[Some(one), series], &found, None).await?;
                return Err(Error::NotFound(format!("study {one}")));
            }
            Ok(found)
        }
    }
}

/// Records a search (QIDO-RS) by the caller within `uids` (study, series), or over
/// everything they see: what it asked (`query`, cut at 500 characters) and how many
/// results it `answered`. The patient is the one the query names (`patient`), else the
/// one all that was `searched` belongs to.
pub async fn searched_audit(
    store: &Store,
    caller: &User,
    uids: [Option<&str>; 2],
    query: &str,
    patient: Option<&str>,
    searched: &[duikou_imaging::dicomweb::Indexed],
    answered: usize,
) -> Result<(), Error> {
    const MOST: usize = 500;
    let mut asked: String = query.chars().take(MOST).collect();
    if query.chars().count() > MOST {
        asked.push('…');
    }
    let patient = patient.or_else(|| one_patient(searched.iter().map(|i| i.patient_name.as_str())));
    let event = crate::audit::Event::by(caller, "study", "search")
        .patient(patient)
        .detail(format!("query {asked}; {answered} answered"));
    referring(event, &uids).record(store).await
}

/// One instance of `within` and `series` the caller may see, found as [`study`] finds the
/// study; not found when the instance is not among them. Audited with its UIDs.
pub async fn instance(
    store: &Store,
    caller: &User,
    within: &str,
    series: &str,
    sop_instance: &str,
) -> Result<VisibleInstance, Error> {
    let found = visible(store, caller, within, Some(series))
        .await?
        .into_iter()
        .filter(|i| i.indexed.sop_instance_uid == sop_instance)
        .collect::<Vec<_>>();
    let uids = [Some(within), Some(series), Some(sop_instance)];
    audit_read(store, caller, "read", &uids, &found, None).await?;
    found
        .into_iter()
        .next()
        .ok_or_else(|| Error::NotFound(format!("instance {sop_instance}")))
}

/// Refused, and audited, unless the caller may add instances to `study`: one nobody holds
/// yet, or one their institution sees (see [`super::may_add_to`]).
pub async fn add_to(store: &Store, caller: &User, study: &str) -> Result<(), Error> {
    if super::may_add_to(store, reader(caller)?, study).await? {
        return Ok(());
    }
    crate::audit::record(store, caller, "study", "store", None, false, None).await?;
    Err(Error::forbidden(
        "this study was neither sent by nor to your institution",
    ))
}

/// Records what an upload by the caller kept: `stored` instances, and `failed` it did not.
pub async fn uploaded(
    store: &Store,
    caller: &User,
    stored: usize,
    failed: usize,
) -> Result<(), Error> {
    let detail = format!("{stored} instances stored, {failed} failed");
    crate::audit::record(store, caller, "study", "store", None, true, Some(detail)).await
}

/// Whose forwards the caller lists when asking for `asked`: administrators any (or all,
/// `None`); coordinators their own institution's only.
pub fn forwards_listed(caller: &User, asked: Option<i64>) -> Result<Option<i64>, Error> {
    if caller.is(Role::Admin) {
        return Ok(asked);
    }
    if !caller.is(Role::Coordinator) {
        return Err(Error::forbidden(
            "coordinators and administrators see the forward queue",
        ));
    }
    if asked.is_some_and(|i| i != caller.institution_id) {
        return Err(Error::forbidden(
            "coordinators see their own institution's forwards",
        ));
    }
    Ok(Some(caller.institution_id))
}

/// What `caller` is shown of `f`'s last error: administrators the whole of it; others its
/// kind only.
pub fn shown_to(caller: &User, f: &mut ForwardView) {
    if !caller.is(Role::Admin) {
        f.last_error = f
            .last_error
            .as_deref()
            .map(|e| duikou_imaging::forward::error_class(e).to_owned());
    }
}

/// A forward the caller may act on (retry, cancel), as they are shown it.
pub async fn forward(store: &Store, caller: &User, id: i64) -> Result<ForwardView, Error> {
    let filter = ForwardFilter {
        id: Some(id),
        limit: 1,
        ..ForwardFilter::default()
    };
    let mut f = store
        .forwards(&filter)
        .await?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("forward {id}")))?;
    let involved = caller.manages(f.source_institution_id)
        || f.destination_institution_id
            .is_some_and(|d| caller.manages(d));
    if !involved {
        return Err(Error::forbidden(
            "the coordinators of the sending or receiving institution, or an administrator",
        ));
    }
    shown_to(caller, &mut f);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Institution;
    use crate::store::{AuditFilter, ForwardOutcome, ForwardTarget, Indexing, NewForward};
    use crate::testing::Fixture;
    use duikou_imaging::scp::InstanceRecord;

    /// A county hospital that sent a study, forwarded to the tertiary hospital that reads
    /// it, and a third hospital that has nothing to do with it.
    struct Sent {
        f: Fixture,
        county: Institution,
        tertiary: Institution,
        third: Institution,
        forward: i64,
    }

    const STUDY: &str = "2.25.7001";

    async fn sent() -> Sent {
        let f = Fixture::new().await;
        let county = f.institution("台山市人民医院", "county", "general").await;
        let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
        let third = f.institution("开平市中心医院", "county", "general").await;
        let record = InstanceRecord {
            sop_instance_uid: "2.25.7001.1.1".into(),
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
            study_instance_uid: STUDY.into(),
            series_instance_uid: "2.25.7001.1".into(),
            patient_name: "WANG^MOUMOU".into(),
            modality: "CT".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            size: 1000,
            path: "segments/00000001.seg".into(),
            offset: 128,
            calling_ae: "TAISHAN_CT".into(),
            institution_id: county.id,
            ..InstanceRecord::default()
        };
        let to = NewForward {
            target: ForwardTarget {
                institution_id: Some(tertiary.id),
                ae_title: "READ_PACS".into(),
                host: "10.0.0.5".into(),
                port: 104,
                tls: false,
            },
            error: None,
        };
        let indexed = f
            .store
            .index_instance(
                std::future::ready(Some(record)),
                &to,
                None,
                std::future::ready(true),
            )
            .await
            .unwrap();
        let Some(Indexing::New { forward_job }) = indexed else {
            panic!("not indexed: {indexed:?}");
        };
        Sent {
            f,
            county,
            tertiary,
            third,
            forward: forward_job,
        }
    }

    async fn refusals(f: &Fixture, who: &User) -> usize {
        let audited = f
            .store
            .audit_entries(&AuditFilter {
                user_id: Some(who.id),
                object_kind: Some("study".into()),
                limit: 100,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        audited
            .iter()
            .filter(|(_, a)| a.outcome != crate::store::Outcome::Allowed)
            .count()
    }

    #[tokio::test]
    async fn a_study_is_read_by_its_sender_and_its_reader_and_hidden_from_others() {
        let s = sent().await;
        for (institution, roles) in [
            (&s.county, "clinician"),
            (&s.tertiary, "radiologist"),
            (&s.tertiary, "coordinator"),
        ] {
            let who = s.f.user(institution, roles, None).await;
            let seen = study(&s.f.store, &who, STUDY, None).await.unwrap();
            assert_eq!(seen.len(), 1, "{roles}");
            assert_eq!(
                searched(&s.f.store, &who, None, None).await.unwrap().len(),
                1
            );
        }
        // Another hospital's radiologist: not found, exactly as an unknown study is, and
        // both looks are audited as refused.
        let other = s.f.user(&s.third, "radiologist", None).await;
        let hidden = study(&s.f.store, &other, STUDY, None).await.unwrap_err();
        let unknown = study(&s.f.store, &other, "2.25.404", None)
            .await
            .unwrap_err();
        assert!(matches!(hidden, Error::NotFound(_)), "{hidden:?}");
        assert!(matches!(unknown, Error::NotFound(_)), "{unknown:?}");
        assert_eq!(refusals(&s.f, &other).await, 2);
        // What is not a UID at all is not looked up, and answered and audited the same.
        for not_a_uid in ["1..2", "2.25.x", "' or 1=1 --"] {
            let refused = study(&s.f.store, &other, not_a_uid, None).await;
            assert!(matches!(refused, Err(Error::NotFound(_))), "{not_a_uid}");
        }
        let bad_series = study(&s.f.store, &other, STUDY, Some("1.02")).await;
        assert!(matches!(bad_series, Err(Error::NotFound(_))));
        assert_eq!(refusals(&s.f, &other).await, 6);
        assert!(
            searched(&s.f.store, &other, None, None)
                .await
                .unwrap()
                .is_empty()
        );
        let within = searched(&s.f.store, &other, Some(STUDY), None).await;
        assert!(matches!(within, Err(Error::NotFound(_))));
        // A trainee of the reading hospital reads no studies.
        let trainee = s.f.user(&s.tertiary, "trainee", None).await;
        let refused = study(&s.f.store, &trainee, STUDY, None).await;
        assert!(matches!(refused, Err(Error::Forbidden(_))));
    }

    #[tokio::test]
    async fn an_instance_is_found_only_within_a_study_the_caller_sees() {
        let s = sent().await;
        const SERIES: &str = "2.25.7001.1";
        const SOP: &str = "2.25.7001.1.1";
        let reader = s.f.user(&s.tertiary, "radiologist", None).await;
        let found = instance(&s.f.store, &reader, STUDY, SERIES, SOP).await;
        assert_eq!(found.unwrap().indexed.sop_instance_uid, SOP);
        for (series, sop) in [(SERIES, "2.25.7001.1.2"), ("2.25.7001.2", SOP)] {
            let missing = instance(&s.f.store, &reader, STUDY, series, sop).await;
            assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
        }
        // Another hospital's radiologist is told what an unknown instance is, audited.
        let other = s.f.user(&s.third, "radiologist", None).await;
        let hidden = instance(&s.f.store, &other, STUDY, SERIES, SOP).await;
        assert!(matches!(hidden, Err(Error::NotFound(_))), "{hidden:?}");
        assert_eq!(refusals(&s.f, &other).await, 1);
    }

    #[tokio::test]
    async fn instances_are_added_to_a_new_study_or_one_the_caller_sees_and_no_other() {
        let s = sent().await;
        for (institution, roles) in [(&s.county, "clinician"), (&s.tertiary, "radiologist")] {
            let who = s.f.user(institution, roles, None).await;
            add_to(&s.f.store, &who, STUDY).await.unwrap();
        }
        let other = s.f.user(&s.third, "radiologist", None).await;
        add_to(&s.f.store, &other, "2.25.8001").await.unwrap();
        let refused = add_to(&s.f.store, &other, STUDY).await;
        assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
        assert_eq!(refusals(&s.f, &other).await, 1);
        // A trainee uploads nothing, wherever.
        let trainee = s.f.user(&s.county, "trainee", None).await;
        let refused = add_to(&s.f.store, &trainee, "2.25.8001").await;
        assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    }

    #[tokio::test]
    async fn what_an_upload_kept_is_audited() {
        let s = sent().await;
        let who = s.f.user(&s.county, "clinician", None).await;
        uploaded(&s.f.store, &who, 2, 1).await.unwrap();
        let audited =
            s.f.store
                .audit_entries(&AuditFilter {
                    user_id: Some(who.id),
                    limit: 10,
                    ..AuditFilter::default()
                })
                .await
                .unwrap();
        assert_eq!(audited.len(), 1);
        let (_, entry) = &audited[0];
        assert_eq!(
            (entry.action.as_str(), entry.outcome.as_str()),
            ("store", "allowed")
        );
        assert_eq!(
            entry.detail.as_deref(),
            Some("2 instances stored, 1 failed")
        );
    }

    #[tokio::test]
    async fn forwards_are_for_the_coordinators_of_either_side_and_administrators() {
        let s = sent().await;
        // The worker claims it, and the destination refuses.
        let claimed =
            s.f.store
                .claim_forwards(10, std::time::Duration::from_secs(30))
                .await
                .unwrap();
        assert_eq!(claimed.len(), 1);
        s.f.store
            .record_forwards(&[ForwardOutcome {
                id: s.forward,
                error: Some("cannot associate with READ_PACS at 10.0.0.5:104: refused".into()),
                retry: true,
                next: chrono::Utc::now(),
            }])
            .await
            .unwrap();
        let sender = s.f.user(&s.county, "coordinator", None).await;
        let reader = s.f.user(&s.tertiary, "coordinator", None).await;
        let stranger = s.f.user(&s.third, "coordinator", None).await;
        let clinician = s.f.user(&s.county, "clinician", None).await;

        let admin = forward(&s.f.store, &s.f.admin, s.forward).await.unwrap();
        assert!(admin.last_error.unwrap().contains("10.0.0.5"));
        for who in [&sender, &reader] {
            let f = forward(&s.f.store, who, s.forward).await.unwrap();
            let error = f.last_error.unwrap();
            assert!(!error.contains("10.0.0.5"), "{error}");
            assert!(error.contains("cannot be reached"), "{error}");
        }
        for who in [&stranger, &clinician] {
            let refused = forward(&s.f.store, who, s.forward).await;
            assert!(matches!(refused, Err(Error::Forbidden(_))));
        }
        let missing = forward(&s.f.store, &s.f.admin, s.forward + 1).await;
        assert!(matches!(missing, Err(Error::NotFound(_))));

        assert_eq!(forwards_listed(&s.f.admin, None).unwrap(), None);
        assert_eq!(
            forwards_listed(&s.f.admin, Some(s.third.id)).unwrap(),
            Some(s.third.id)
        );
        assert_eq!(forwards_listed(&sender, None).unwrap(), Some(s.county.id));
        let elsewhere = forwards_listed(&sender, Some(s.tertiary.id));
        assert!(matches!(elsewhere, Err(Error::Forbidden(_))));
        assert!(matches!(
            forwards_listed(&clinician, None),
            Err(Error::Forbidden(_))
        ));
        assert!(sender.manages(s.county.id) && !sender.manages(s.tertiary.id));
        assert!(s.f.admin.manages(s.third.id) && !clinician.manages(s.county.id));
    }
}
