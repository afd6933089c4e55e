//! The booking rules, tested by calling the services on a store of their own, without an
//! HTTP server: a request goes to the designated supporter only, it is submitted only with
//! what the national rules ask for, and each step belongs to its side and its turn.

use chrono::{TimeDelta, Utc};

use super::*;
use crate::config::BookingConfig;
use crate::domain::{Institution, Supporter, User};
use crate::rules::{Error, Rule};
use crate::testing::Fixture;

/// A county hospital whose designated supporter for consultations is a tertiary
/// hospital, and a township health centre paired with nobody.
struct Pair {
    f: Fixture,
    tertiary: Institution,
    other_tertiary: Institution,
    doctor: User,
    consultant: User,
    unpaired_doctor: User,
    county_coordinator: User,
}

async fn pair() -> Pair {
    let f = Fixture::new().await;
    let tertiary = f.institution("江门市中心医院", "tertiary", "general").await;
    let other_tertiary = f.institution("江门市人民医院", "tertiary", "general").await;
    let county = f.institution("台山市人民医院", "county", "general").await;
    let township = f
        .institution("台山市北陡镇卫生院", "township", "health_centre")
        .await;
    f.pairing(
        Supporter::Institution(tertiary.id),
        &county,
        "consult,imaging_read",
    )
    .await;
    let doctor = f.clinician(&county, "陈医生").await;
    let consultant = f.clinician(&tertiary, "黄医生").await;
    let lone = f.clinician(&township, "周医生").await;
    Pair {
        doctor: f.user(&county, "clinician", Some(&doctor)).await,
        consultant: f.user(&tertiary, "clinician", Some(&consultant)).await,
        unpaired_doctor: f.user(&township, "clinician", Some(&lone)).await,
        county_coordinator: f.user(&county, "coordinator", None).await,
        f,
        tertiary,
        other_tertiary,
    }
}

/// A complete request's content, its window starting in a day.
fn complete() -> RequestContent {
    let start = Utc::now() + TimeDelta::days(1);
    serde_json::from_value(serde_json::json!({
        "reason": "基层无神经内科专科医师，需上级医院会诊",
        "purpose": "明确头痛病因并指导下一步治疗",
        "window": {"start": start, "end": start + TimeDelta::days(3)},
        "case_summary": {
            "chief_complaint": "反复头痛三天",
            "history": "三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心，无呕吐",
            "findings": "血压 168/102 mmHg，神经系统查体未见明显异常",
            "question": "是否需要转诊行头颅 CT 检查？"
        },
        "specialty": "神经内科",
        "min_title": "deputy_senior",
        "patient": {"name": "王某某", "sex": "M", "birth_date": "1958-03-02", "id_number": "440781195803020011"},
        "consent": {"given_by": "patient", "at": Utc::now() - TimeDelta::hours(1), "method": "e_consent"}
    }))
    .expect("a request's content")
}

fn draft(addressed_to: Option<Supporter>, content: RequestContent) -> NewRequestInput {
    NewRequestInput {
        kind: RequestKind::Consultation,
        urgency: Urgency::Normal,
        addressed_to,
        content,
        submit: false,
    }
}

async fn step(p: &Pair, who: &User, id: i64, step: Step) -> Result<RequestView, Error> {
    let config = BookingConfig::default();
    take_step(&p.f.store, &config, who, id, step, StepInput::default()).await
}

#[tokio::test]
async fn a_request_goes_to_the_designated_supporter_only() {
    let p = pair().await;
    let to = Supporter::Institution(p.tertiary.id);
    let made = create_request(&p.f.store, &p.doctor, draft(Some(to), complete()))
        .await
        .unwrap();
    assert_eq!(made.request.supporter_institution_id, p.tertiary.id);
    // Left out, it goes there too.
    let made = create_request(&p.f.store, &p.doctor, draft(None, complete()))
        .await
        .unwrap();
    assert_eq!(made.request.supporter_institution_id, p.tertiary.id);

    let elsewhere = Supporter::Institution(p.other_tertiary.id);
    let e = create_request(&p.f.store, &p.doctor, draft(Some(elsewhere), complete()))
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::NotDesignatedSupporter));
    assert!(e.to_string().contains("江门市中心医院"), "{e}");

    let e = create_request(&p.f.store, &p.unpaired_doctor, draft(None, complete()))
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::UnpairedSupporter));

    let by_coordinator = create_request(&p.f.store, &p.county_coordinator, draft(None, complete()));
    assert!(matches!(by_coordinator.await, Err(Error::Forbidden(_))));
}

#[tokio::test]
async fn a_request_is_submitted_only_with_what_the_rules_ask_for() {
    let p = pair().await;
    let empty = create_request(
        &p.f.store,
        &p.doctor,
        draft(None, RequestContent::default()),
    )
    .await
    .unwrap();
    let e = step(&p, &p.doctor, empty.request.id, Step::Submit)
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::IncompleteRequest));

    let mut no_consent = complete();
    no_consent.consent = None;
    let made = create_request(&p.f.store, &p.doctor, draft(None, no_consent))
        .await
        .unwrap();
    let e = step(&p, &p.doctor, made.request.id, Step::Submit)
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::MissingConsent));

    let made = create_request(&p.f.store, &p.doctor, draft(None, complete()))
        .await
        .unwrap();
    let submitted = step(&p, &p.doctor, made.request.id, Step::Submit)
        .await
        .unwrap();
    assert_eq!(submitted.request.state, RequestState::Submitted);
}

#[tokio::test]
async fn each_step_belongs_to_its_side_and_its_turn() {
    let p = pair().await;
    let made = create_request(&p.f.store, &p.doctor, draft(None, complete()))
        .await
        .unwrap();
    let id = made.request.id;
    // The supporter does not see, let alone act on, a draft it has not been sent.
    let e = step(&p, &p.consultant, id, Step::Submit).await.unwrap_err();
    assert_eq!(e.rule(), Some(Rule::WrongInstitution));
    step(&p, &p.doctor, id, Step::Submit).await.unwrap();
    // The requester does not accept its own request.
    let e = step(&p, &p.doctor, id, Step::Accept).await.unwrap_err();
    assert_eq!(e.rule(), Some(Rule::WrongInstitution));
    // Nothing is scheduled before it is accepted.
    let e = step(&p, &p.consultant, id, Step::Schedule)
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::StepOutOfOrder));
    // Nobody outside the two institutions reads it.
    let e = request_view(&p.f.store, &p.unpaired_doctor, id)
        .await
        .unwrap_err();
    assert_eq!(e.rule(), Some(Rule::WrongInstitution));
    let seen = request_view(&p.f.store, &p.consultant, id).await.unwrap();
    assert_eq!(seen.request.state, RequestState::Submitted);
}

#[tokio::test]
async fn a_consultant_qualifies_on_the_day_they_reach_three_years_of_practice() {
    let p = pair().await;
    let store = &p.f.store;
    let today = store.now().with_timezone(&china()).date_naive();
    let tomorrow = today + TimeDelta::days(1);
    let since = tomorrow - chrono::Months::new(36);
    let newcomer = store
        .create_clinician(&crate::store::NewClinician {
            name: "何医生".into(),
            sex: None,
            institution_id: p.tertiary.id,
            title: "主任医师".into(),
            title_rank: "senior".into(),
            specialty: "神经内科".into(),
            licence_number: Some("110440700000077".into()),
            practice_since: Some(since),
        })
        .await
        .unwrap();
    let made = create_request(store, &p.doctor, draft(None, complete()))
        .await
        .unwrap();
    let id = made.request.id;
    step(&p, &p.doctor, id, Step::Submit).await.unwrap();
    let accept = async |consultant_id| {
        let config = BookingConfig::default();
        let input = StepInput {
            consultant_id: Some(consultant_id),
            ..StepInput::default()
        };
        take_step(store, &config, &p.consultant, id, Step::Accept, input).await
    };

    // The day before, they are a day short of three years.
    let e = accept(newcomer.id).await.unwrap_err();
    assert_eq!(e.rule(), Some(Rule::ConsultantNotQualified), "{e:?}");
    assert!(e.to_string().contains("three years"), "{e}");
    // On the day, by the gateway's clock, they qualify.
    store
        .clock()
        .advance(std::time::Duration::from_secs(24 * 3600));
    let accepted = accept(newcomer.id).await.unwrap();
    assert_eq!(accepted.request.state, RequestState::Accepted);
    assert_eq!(accepted.request.consultant_id, Some(newcomer.id));
}
