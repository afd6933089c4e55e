//! The rosters of the program documents in the registry (`000`, `003`).

use duikou_tests::duikou::seeds::{self, SeedSource};
use duikou_tests::duikou::store::Store;
use duikou_tests::{
    Backend, TestApp, TestDb, duikou_binary, on_both_backends, urlencode, workspace_root,
};
use reqwest::StatusCode;

on_both_backends!(
    the_rosters_give_100_village_pairings_with_the_task_table_counts,
    a_second_import_adds_nothing,
    a_bad_seed_file_imports_nothing,
);

/// Several gateway processes share one PostgreSQL database (SQLite is one process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_starting_together_on_postgres_import_once() {
    let db = TestDb::new(Backend::Postgres).await.unwrap();
    let (a, b) = tokio::join!(
        duikou_tests::duikou::startup::prepare(db.config()),
        duikou_tests::duikou::startup::prepare(db.config()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        u8::from(a.first_admin.is_some()) + u8::from(b.first_admin.is_some()),
        1,
        "exactly one of them creates the administrator"
    );
    a.store.close().await;
    b.store.close().await;
    let counts = db.snapshot().await.unwrap();
    for (table, expected) in [("clinician", 100), ("pairing", 107), ("app_user", 1)] {
        assert!(
            counts.contains(&(table.to_owned(), expected)),
            "{table}: {counts:?}"
        );
    }
}

async fn the_rosters_give_100_village_pairings_with_the_task_table_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, pairings) = app
        .get(
            "/api/v1/pairings?service=consult&date=2017-06-01&limit=1000",
            &app.admin_token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pairings}");
    let village: Vec<_> = pairings
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["supporter"]["kind"] == "clinician")
        .collect();
    assert_eq!(village.len(), 100, "one pairing per village (000, 附件2)");
    // 000, 任务分解表: Taishan 37, Kaiping 17, Heshan 16, Enping 30.
    for (city, expected) in [
        ("台山市", 37),
        ("开平市", 17),
        ("鹤山市", 16),
        ("恩平市", 30),
    ] {
        let region = urlencode(&format!("广东省/江门市/{city}"));
        let (status, stations) = app
            .get(
                &format!("/api/v1/institutions?region={region}&level=village_station&limit=1000"),
                &app.admin_token,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let stations = stations.as_array().unwrap();
        assert_eq!(stations.len(), expected, "{city}");
        assert!(
            stations.iter().all(|s| s["remote"] == true),
            "the 老区村 stations are remote"
        );
    }
    // Stray spaces are gone: 詹  俊 and 龙 山 (恩平市良西镇).
    let (_, zhan) = app
        .get(
            &format!("/api/v1/clinicians?name={}", urlencode("詹俊")),
            &app.admin_token,
        )
        .await;
    assert_eq!(zhan.as_array().unwrap().len(), 1, "{zhan}");
    app.institution_id("良西镇龙山村卫生站").await;
    // One unit written two ways is one institution (鹤山市妇幼保健计划生育服务中心).
    let heshan_mch = app.institution_id("鹤山市妇幼保健计划生育服务中心").await;
    let (_, staff) = app
        .get(
            &format!("/api/v1/clinicians?institution_id={heshan_mch}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(
        staff.as_array().unwrap().len(),
        3,
        "钟丽群, 冯艳玲, 巫哲谦: {staff}"
    );
    // Every dispatched clinician ranks intermediate or higher (000, 派出对象).
    let (_, all) = app
        .get("/api/v1/clinicians?limit=1000", &app.admin_token)
        .await;
    let (_, qualified) = app
        .get(
            "/api/v1/clinicians?limit=1000&min_rank=intermediate",
            &app.admin_token,
        )
        .await;
    assert_eq!(all.as_array().unwrap().len(), 100);
    assert_eq!(qualified.as_array().unwrap().len(), 100);
    // The Huancui table (003): three villages, each with its visiting unit.
    let (_, huancui) = app
        .get(
            "/api/v1/pairings?date=2020-06-01&limit=1000",
            &app.admin_token,
        )
        .await;
    assert_eq!(huancui.as_array().unwrap().len(), 3, "{huancui}");
    app.stop().await;
}

async fn a_second_import_adds_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = app.db.snapshot().await.unwrap();
    let store = Store::connect(&app.db.url, 2).await.unwrap();
    // Under another digest, so the import really runs rather than being skipped.
    let set = seeds::parse(&SeedSource::embedded()).unwrap();
    let counts = store.import_seeds(&set, "a second import").await.unwrap();
    assert_eq!(
        (counts.institutions, counts.clinicians, counts.pairings),
        (0, 0, 0)
    );
    let mut after = app.db.snapshot().await.unwrap();
    // Only the record of the second import itself is new.
    let imports = after.iter_mut().find(|(t, _)| t == "seed_import").unwrap();
    assert_eq!(imports.1, 2);
    imports.1 = 1;
    assert_eq!(before, after);
    store.close().await;
    app.stop().await;
}

/// Copies seeds/ to a temporary directory and applies `edit` to one file's text.
fn bad_seeds(file: &str, edit: impl FnOnce(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut edit = Some(edit);
    for name in seeds::FILES {
        let text = std::fs::read_to_string(workspace_root().join("seeds").join(name)).unwrap();
        let text = match edit.take_if(|_| name == file) {
            Some(edit) => edit(text),
            None => text,
        };
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

/// The 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

async fn a_bad_seed_file_imports_nothing(backend: Backend) {
    let roster =
        std::fs::read_to_string(workspace_root().join("seeds/jiangmen_villages.csv")).unwrap();
    let junior_line = line_of(&roster, "郭江斌");
    let dir = bad_seeds("jiangmen_villages.csv", |t| {
        t.replacen("副主任医师", "医师", 1)
    });
    let db = TestDb::new(backend).await.unwrap();
    let mut config = db.config();
    config.seeds.dir = Some(dir.path().to_path_buf());
    let err = duikou_tests::duikou::startup::prepare(config)
        .await
        .err()
        .expect("bad seeds are refused");
    let message = format!("{err:#}");
    assert!(
        message.contains(&format!("jiangmen_villages.csv:{junior_line}:")),
        "{message}"
    );
    assert!(message.contains("intermediate"), "{message}");
    for (table, count) in db.snapshot().await.unwrap() {
        assert_eq!(count, 0, "{table} is empty after a refused import");
    }
}

#[test]
fn seeds_check_prints_every_problem_with_its_line() {
    let roster =
        std::fs::read_to_string(workspace_root().join("seeds/jiangmen_villages.csv")).unwrap();
    let dropped = roster
        .lines()
        .find(|l| l.contains("许文妙"))
        .unwrap()
        .to_owned();
    let unit_line = line_of(&roster, "台山市第二人民医院");
    let dir = bad_seeds("jiangmen_villages.csv", |t| {
        t.replace(&format!("{dropped}\n"), "").replacen(
            "台山市第二人民医院",
            "台山市第九人民医院",
            1,
        )
    });
    let out = std::process::Command::new(duikou_binary())
        .args(["seeds", "check"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let villages = dir
        .path()
        .join("jiangmen_villages.csv")
        .display()
        .to_string();
    let tasks = dir.path().join("jiangmen_tasks.csv").display().to_string();
    assert!(
        stdout.contains(&format!(
            "{villages}:{unit_line}: unit: 台山市第九人民医院 is not in institutions.csv"
        )),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with(&format!("{tasks}:"))
            && l.contains("台山市")
            && l.contains("37")),
        "{stdout}"
    );

    let good = std::process::Command::new(duikou_binary())
        .args(["seeds", "check"])
        .arg(workspace_root().join("seeds"))
        .output()
        .unwrap();
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stdout)
    );
}
