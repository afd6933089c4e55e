//! `duikou demo`: a complete demonstration program for today, built on an empty data
//! directory on top of the seeded rosters, so that a newcomer can walk every role's pages
//! within a minute of starting it.
//!
//! What it builds goes through the same services the API calls, as the people of each
//! role would (an administrator pairs and registers, a coordinator publishes hours, a
//! county doctor books and uploads, the consultant accepts, schedules and signs), so the
//! demonstration obeys every rule the product enforces. Every person and session it adds
//! is named with "（演示）", and the installation is marked as a demonstration: its pages
//! carry a banner. The institutions are the real seeded ones.
//!
//! Built: 江门市中心医院 supports 台山市人民医院 for every service from a month ago for
//! three years; two qualified consultants with weekly hours; an account for each role at
//! both ends; consultation requests in the main states (a draft, one awaiting a
//! decision, one declined, one scheduled, one with a signed opinion to acknowledge); a
//! synthetic CT study uploaded by the county with a read request for the radiologist;
//! a teaching session tomorrow with enrolled trainees. No imaging destination is set:
//! the tertiary hospital's PACS is not part of the demonstration, so the study waits in
//! the forward queue while the radiologist reads it in the browser.

use std::time::Duration;

use anyhow::{Context as _, bail};
use chrono::{NaiveTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::auth::{Hasher, generate_password};
use crate::booking::availability::add_availability;
use crate::booking::teaching::{create_session, enrol};
use crate::booking::{self, Step, china, free_slots_of};
use crate::config::{BookingConfig, Config};
use crate::domain::{Role, User};
use crate::registry;
use crate::startup::{self, Prepared};
use crate::store::Store;

/// The tertiary hospital and the county hospital of the demonstration (seeded).
const TERTIARY: &str = "江门市中心医院";
const COUNTY: &str = "台山市人民医院";
/// The health bureau whose office runs the program (seeded).
const BUREAU: &str = "江门市卫生计生局";

/// An account the demonstration made, printed once.
#[derive(Debug, Clone)]
pub struct Account {
    /// What the person does, in words.
    pub role: &'static str,
    /// Login name.
    pub username: String,
    /// Password (the person's own, not one-time).
    pub password: String,
    /// Where they work.
    pub institution: &'static str,
}

/// What the demonstration built: the accounts, and what the upload after the start needs.
pub struct Built {
    /// The accounts, in the order they are printed.
    pub accounts: Vec<Account>,
    doctor: User,
    county: i64,
}

/// Prepares the installation as `serve` does, then builds the demonstration on a fresh
/// directory (`Some`), or finds one built already (`None`); refuses a directory with
/// real data.
pub async fn prepare(config: Config) -> anyhow::Result<(Prepared, Option<Built>)> {
    let prepared = startup::prepare(config).await?;
    let store = &prepared.store;
    if store.is_demo().await? {
        return Ok((prepared, None));
    }
    let Some((username, _)) = &prepared.first_admin else {
        bail!(
            "this data directory holds a real installation; `duikou demo` builds its \
             demonstration only on an empty one (point data.dir, or DUIKOU_DATA_DIR, at a new directory)"
        );
    };
    let (admin, _) = store
        .user_with_hash(username)
        .await?
        .context("the first administrator")?;
    let built = build(store, &prepared.config.booking, &admin).await?;
    Ok((prepared, Some(built)))
}

/// Reads a service's input from JSON, as the API would.
fn input<T: DeserializeOwned>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value).context("a demonstration input")
}

async fn institution(store: &Store, name: &str) -> anyhow::Result<i64> {
    Ok(store
        .institutions_named(name)
        .await?
        .first()
        .with_context(|| format!("the seeded institution {name}"))?
        .id)
}

/// Builds the demonstration with `admin`, the first administrator.
pub async fn build(store: &Store, booking: &BookingConfig, admin: &User) -> anyhow::Result<Built> {
    let (tertiary, county, bureau) = (
        institution(store, TERTIARY).await?,
        institution(store, COUNTY).await?,
        institution(store, BUREAU).await?,
    );
    let today = store.now().with_timezone(&china()).date_naive();
    registry::create_pairing(
        store,
        admin,
        input(json!({
            "supporter": {"kind": "institution", "id": tertiary},
            "supported": {"kind": "institution", "value": county},
            "services": ["consult", "imaging_read", "pathology_read", "ward_round", "teaching"],
            "valid_from": today - TimeDelta::days(30),
            "valid_to": today + TimeDelta::days(3 * 365),
        }))?,
    )
    .await?;

    let clinician = |name: &str, at: i64, title: &str, specialty: &str, years: i64, n: u32| {
        json!({
            "name": format!("{name}（演示）"), "institution_id": at, "title": title,
            "specialty": specialty, "licence_number": format!("11044070000{n:04}"),
            "practice_since": today - TimeDelta::days(years * 366),
        })
    };
    let mut ids = Vec::new();
    for c in [
        clinician("林志远", tertiary, "主任医师", "神经内科", 22, 1),
        clinician("周敏", tertiary, "副主任医师", "心血管内科", 12, 2),
        clinician("王磊", tertiary, "主治医师", "放射科", 8, 3),
        clinician("李伟", county, "主治医师", "全科医学", 6, 4),
    ] {
        ids.push(
            registry::create_clinician(store, admin, input(c)?)
                .await?
                .clinician
                .id,
        );
    }
    let [lin, zhou, wang, li] = ids[..] else {
        unreachable!("four clinicians")
    };

    let hasher = Hasher::new(1, Duration::from_secs(30));
    let mut accounts = Vec::new();
    let mut users = Vec::new();
    for (role, username, name, at, place, roles, clinician) in [
        (
            "卫生健康局项目管理员",
            "demo.admin",
            "项目办（演示）",
            bureau,
            BUREAU,
            vec![Role::Admin],
            None,
        ),
        (
            "三级医院远程医疗办公室",
            "jm.office",
            "医务科（演示）",
            tertiary,
            TERTIARY,
            vec![Role::Coordinator],
            None,
        ),
        (
            "会诊专家",
            "jm.lin",
            "林志远（演示）",
            tertiary,
            TERTIARY,
            vec![Role::Clinician],
            Some(lin),
        ),
        (
            "影像科医师",
            "jm.wang",
            "王磊（演示）",
            tertiary,
            TERTIARY,
            vec![Role::Radiologist, Role::Clinician],
            Some(wang),
        ),
        (
            "县医院医生",
            "ts.li",
            "李伟（演示）",
            county,
            COUNTY,
            vec![Role::Clinician],
            Some(li),
        ),
        (
            "县医院医务科",
            "ts.office",
            "医务科（演示）",
            county,
            COUNTY,
            vec![Role::Coordinator],
            None,
        ),
        (
            "进修学员",
            "ts.trainee",
            "陈晓（演示）",
            county,
            COUNTY,
            vec![Role::Trainee],
            None,
        ),
    ] {
        let password = generate_password();
        let created = registry::create_account(
            store,
            &hasher,
            admin,
            registry::AccountInput {
                username: username.into(),
                display_name: name.into(),
                institution_id: at,
                clinician_id: clinician,
                roles,
                password: Some(password.clone()),
            },
        )
        .await?;
        users.push(created.user);
        accounts.push(Account {
            role,
            username: username.into(),
            password,
            institution: place,
        });
    }
    let [_, office, consultant, _, doctor, _, trainee] = &users[..] else {
        unreachable!("seven accounts")
    };

    // The consultants' hours: every day, mornings and afternoons.
    for id in [lin, zhou] {
        for weekday in 1..=7 {
            for (start, end) in [("08:00", "12:00"), ("14:00", "17:30")] {
                add_availability(
                    store,
                    office,
                    id,
                    input(json!({"weekday": weekday, "start_time": start, "end_time": end, "slot_minutes": 30}))?,
                )
                .await?;
            }
        }
    }

    consultations(store, booking, doctor, consultant, office, lin).await?;

    // Teaching tomorrow at 15:00 China time, for ninety minutes.
    let tomorrow = (today + TimeDelta::days(1))
        .and_time(NaiveTime::from_hms_opt(15, 0, 0).expect("a time"))
        .and_local_timezone(china())
        .single()
        .context("a China time")?
        .with_timezone(&Utc);
    let session = create_session(
        store,
        office,
        input(json!({
            "presenter_clinician_id": lin,
            "topic": "急性脑卒中的早期识别与转诊（演示）",
            "starts_at": tomorrow,
            "ends_at": tomorrow + TimeDelta::minutes(90),
            "capacity": 30,
        }))?,
    )
    .await?;
    for who in [trainee, doctor] {
        enrol(store, who, session.id).await?;
    }
    store.mark_demo().await?;
    Ok(Built {
        accounts,
        doctor: doctor.clone(),
        county,
    })
}

/// A consultation's content as a county doctor writes it, the window opening in an hour.
fn content(complaint: &str, specialty: &str) -> Value {
    let start = Utc::now() + TimeDelta::hours(1);
    json!({
        "reason": "基层无相应专科医师，需上级医院会诊（演示）",
        "purpose": "明确诊断并指导下一步治疗",
        "window": {"start": start, "end": start + TimeDelta::days(5)},
        "case_summary": {
            "chief_complaint": complaint,
            "history": "三天前无明显诱因起病，门诊对症处理后未见明显好转，既往高血压病史十年",
            "findings": "血压 168/102 mmHg，神经系统查体未见明显异常，心电图窦性心律",
            "question": "是否需要转诊上级医院进一步检查？"
        },
        "specialty": specialty,
        "min_title": "deputy_senior",
        "patient": {"name": "王某某（演示）", "sex": "M", "birth_date": "1958-03-02", "id_number": "440781195803020011"},
        "consent": {"given_by": "patient", "at": Utc::now() - TimeDelta::hours(1), "method": "e_consent"}
    })
}

/// The consultation requests, one in each main state.
async fn consultations(
    store: &Store,
    booking: &BookingConfig,
    doctor: &User,
    consultant: &User,
    office: &User,
    lin: i64,
) -> anyhow::Result<()> {
    let new = |complaint: &str, specialty: &str, urgency: &str| {
        input::<booking::NewRequestInput>(json!({
            "kind": "consultation", "urgency": urgency, "content": content(complaint, specialty),
        }))
    };
    let step = |by: &User, id: i64, step: Step, with: Value| {
        let by = by.clone();
        async move {
            booking::take_step(store, booking, &by, id, step, input(with)?).await?;
            anyhow::Ok(())
        }
    };
    // A draft, not sent yet.
    booking::create_request(store, doctor, new("反复头晕一周", "神经内科", "normal")?).await?;
    // Awaiting a decision, urgent.
    let waiting = booking::create_request(
        store,
        doctor,
        new("突发胸闷气促两小时", "心血管内科", "urgent")?,
    )
    .await?;
    step(doctor, waiting.request.id, Step::Submit, json!({})).await?;
    // Declined with a reason.
    let declined =
        booking::create_request(store, doctor, new("慢性湿疹三年", "皮肤科", "normal")?).await?;
    step(doctor, declined.request.id, Step::Submit, json!({})).await?;
    step(office, declined.request.id, Step::Decline, json!({"reason_code": "no_specialist", "reason_text": "本院皮肤科专家本周外出，请改约（演示）"})).await?;
    // Scheduled, and one whose opinion is signed and waits for the county.
    let today = store.now().with_timezone(&china()).date_naive();
    let slots = free_slots_of(store, lin, today, today + TimeDelta::days(5)).await?;
    let window_opens = Utc::now() + TimeDelta::hours(1);
    let mut free = slots.iter().filter(|s| s.start > window_opens);
    for signed in [false, true] {
        let r = booking::create_request(
            store,
            doctor,
            new("反复头痛三天，伴恶心", "神经内科", "normal")?,
        )
        .await?;
        step(doctor, r.request.id, Step::Submit, json!({})).await?;
        step(
            office,
            r.request.id,
            Step::Accept,
            json!({"consultant_id": lin}),
        )
        .await?;
        let slot = free.next().context("a free slot for the demonstration")?;
        step(
            consultant,
            r.request.id,
            Step::Schedule,
            json!({"start": slot.start}),
        )
        .await?;
        if signed {
            step(consultant, r.request.id, Step::Start, json!({})).await?;
            booking::save_opinion(
                store,
                consultant,
                r.request.id,
                "考虑紧张型头痛可能性大，高血压需规范控制。建议：1. 氨氯地平 5 mg 每日一次；2. 两周后复诊；3. 如出现肢体无力、言语不清，立即转诊。（演示）".into(),
            )
            .await?;
            step(consultant, r.request.id, Step::Sign, json!({})).await?;
        }
    }
    Ok(())
}

/// After the start: the county doctor uploads a synthetic CT study over STOW-RS to the
/// gateway at `base` (as the pages' own viewer would), and asks for its read.
pub async fn upload_study(
    store: &Store,
    booking: &BookingConfig,
    built: &Built,
    base: &str,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let series = duikou_imaging::testing::series::ct_series(dir.path(), 12, 256, "DEMO0001")?;
    let boundary = format!("demo-{}", rand::random::<u64>());
    let mut body = Vec::new();
    for file in &series.files {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(&std::fs::read(file)?);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let account = built
        .accounts
        .iter()
        .find(|a| a.username == built.doctor.username)
        .context("the county doctor's account")?;
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": account.username, "password": account.password}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("a token")?;
    http.post(format!("{base}/dicomweb/studies"))
        .bearer_auth(token)
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/related; type=\"application/dicom\"; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await?
        .error_for_status()
        .context("uploading the demonstration study")?;
    let mut read = content("CT 示颅内占位待排（演示）", "放射科");
    read["study_instance_uid"] = series.study.clone().into();
    read["accession_number"] = "DEMO0001".into();
    // The demonstration series is of a made-up `Test^Patient`, not the request's patient:
    // the demo doctor confirmed the study is the one to read.
    read["study_patient_confirmed"] = true.into();
    let r = booking::create_request(
        store,
        &built.doctor,
        input(json!({"kind": "imaging_read", "urgency": "normal", "content": read}))?,
    )
    .await?;
    booking::take_step(
        store,
        booking,
        &built.doctor,
        r.request.id,
        Step::Submit,
        input(json!({}))?,
    )
    .await?;
    tracing::info!(county = built.county, "demonstration study uploaded");
    Ok(())
}
