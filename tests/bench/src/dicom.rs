//! `duikou-bench dicom`: the relay's ingest and forwarding measured against DCMTK in one
//! run, on a synthetic CT series the command makes itself. A benchmark, not a test: it
//! prints figures and ratios, it asserts nothing.
//!
//! (a) `storescu` straight to DCMTK's `storescp`; (b) `storescu` to the relay until the
//! last success (every instance synced and indexed); (c) `storescu` through the relay
//! until the destination `storescp` holds the last instance. Targets: (b) within 1.2× of
//! (a), (c) within 1.5× of (a). Each timed run starts after a `sync`, and the CPU seconds of
//! the side measured are printed beside the wall times. What (a)'s `storescp` and (c)'s
//! destination wrote is removed after each round, so that every round starts with as much
//! memory free: on a VM whose host takes back freed memory, a round that must have memory
//! given again runs slower. With the destination keeping every round's files, the (a) of
//! later rounds ran two to three times slower on such a VM (its copies into the page cache
//! were that much slower), which flattered the relay.
//!
//! Every timed run, (a) too, also waits until the relay's spool has its room prepared
//! (`imaging.spool_prepared_bytes`), so that preparing it never falls into a run: the
//! relay as it is when a study comes after a quiet moment. `--unprepared` measures it
//! with no room prepared.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use duikou::config::Config;

/// Writes a CT series of `n` images of 512×512, 16 bits, into `dir`.
fn series(dir: &Path, n: usize) -> anyhow::Result<()> {
    duikou_imaging::testing::series::ct_series(dir, n, 512, "BENCH0001")?;
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn storescp(dir: &Path, port: u16, ae: &str) -> anyhow::Result<Killed> {
    std::fs::create_dir_all(dir)?;
    let child = Command::new("storescp")
        .args(["-aet", ae, "-od"])
        .arg(dir)
        .arg(port.to_string())
        .env("TCP_NODELAY", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting DCMTK's storescp (apt-get install dcmtk)")?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("storescp did not listen");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(Killed(child))
}

/// Runs `storescu` of every file in `dir` to `port`; returns its wall time.
fn storescu(dir: &Path, calling: &str, called: &str, port: u16) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("storescu")
        .args(["-aet", calling, "-aec", called, "+sd", "127.0.0.1"])
        .arg(port.to_string())
        .arg(dir)
        .env("TCP_NODELAY", "1")
        .output()
        .context("running DCMTK's storescu")?;
    if !out.status.success() {
        bail!("storescu failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed())
}

/// CPU seconds so far of this process (all its threads) and of its children that ended,
/// from `/proc/self/stat` (clock ticks of 10 ms).
fn cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command's name: state (0) … utime (11), stime (12), cutime (13), cstime (14).
    let fields: Vec<f64> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    let seconds = |i: usize| fields.get(i).copied().unwrap_or(0.0) / 100.0;
    (seconds(11) + seconds(12), seconds(13) + seconds(14))
}

/// CPU seconds the host has taken from this VM so far, all CPUs together: the `steal`
/// column of `/proc/stat` (in clock ticks of 10 ms). Zero on a machine of its own.
fn stolen() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|stat| steal_seconds(&stat))
        .unwrap_or(0.0)
}

/// The `steal` of the `cpu` line of a `/proc/stat`, in seconds: the eighth number after
/// `cpu` (user, nice, system, idle, iowait, irq, softirq, steal).
fn steal_seconds(stat: &str) -> Option<f64> {
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))?;
    let ticks: f64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(ticks / 100.0)
}

/// Writes out what earlier runs left in the page cache, so that their writeback does not
/// fall into the next timed run.
fn settle() {
    let _ = Command::new("sync").status();
}

/// One timed run: its wall time, the CPU seconds of the side measured (DCMTK's two
/// processes for (a), the relay for (b) and (c)), and the CPU seconds the host took from
/// the VM meanwhile (a run it took much from is slower whichever side it measures).
#[derive(Clone, Copy)]
struct Timed {
    wall: Duration,
    cpu: f64,
    stolen: f64,
}

/// Free memory and page cache in GiB, from /proc/meminfo.
fn free_memory() -> Option<(f64, f64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / (1024.0 * 1024.0))
    };
    Some((field("MemFree:")?, field("Cached:")?))
}

/// Whether this is a VM whose balloon device reports freed memory to the host (virtio
/// device 5 with feature bit 5, `VIRTIO_BALLOON_F_REPORTING`).
fn free_page_reporting() -> bool {
    let Ok(devices) = std::fs::read_dir("/sys/bus/virtio/devices") else {
        return false;
    };
    devices.flatten().any(|d| {
        let read = |name: &str| std::fs::read_to_string(d.path().join(name)).unwrap_or_default();
        read("device").trim() == "0x0005" && read("features").as_bytes().get(5) == Some(&b'1')
    })
}

/// Removes the files in `dir` (a destination's, between rounds).
fn empty(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    Ok(())
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

/// The median of some durations.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// (a): `storescu` of `dir` straight to a DCMTK `storescp`, into a directory under `root`
/// that is removed after.
fn dcmtk_to_dcmtk(root: &Path, dir: &Path) -> anyhow::Result<Timed> {
    let port = free_port()?;
    let out = root.join("out-a");
    let scp = storescp(&out, port, "PEER")?;
    settle();
    let (before, stolen_before) = (cpu().1, stolen());
    let wall = storescu(dir, "BENCH", "PEER", port)?;
    let stolen = stolen() - stolen_before;
    drop(scp);
    let cpu = cpu().1 - before;
    std::fs::remove_dir_all(&out)?;
    Ok(Timed { wall, cpu, stolen })
}

/// The value of the metric `name` in a Prometheus text exposition.
fn metric(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Waits until the relay's spool has `bytes` of room prepared and prepares nothing more,
/// as its `/metrics` say.
async fn spool_prepared(http: &reqwest::Client, base: &str, bytes: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let prepared = metric(&text, "duikou_dicom_spool_prepared_bytes").unwrap_or(0.0);
        let preparing = metric(&text, "duikou_dicom_spool_preparing").unwrap_or(1.0);
        if prepared >= bytes as f64 && preparing == 0.0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the spool has {prepared} bytes prepared of {bytes} after five minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Times `run` with the CPU seconds this process (the relay) spent meanwhile.
async fn relay_timed<F: std::future::Future<Output = anyhow::Result<()>>>(
    run: F,
) -> anyhow::Result<Timed> {
    settle();
    let (before, stolen_before) = (cpu().0, stolen());
    let started = Instant::now();
    run.await?;
    let wall = started.elapsed();
    Ok(Timed {
        wall,
        cpu: cpu().0 - before,
        stolen: stolen() - stolen_before,
    })
}

/// Runs the benchmark with `images` per series, `rounds` times each; `config` supplies
/// the database (a fresh SQLite file in a temporary directory unless a URL is configured).
/// Each round of (b) and of (c) has its own (a) just before it, on the same files, and the
/// ratios are of those pairs.
pub async fn dicom(mut config: Config, images: usize, rounds: usize) -> anyhow::Result<()> {
    let free_memory = free_memory();
    let work = tempfile::tempdir()?;
    let root = work.path();
    println!(
        "generating {} CT series of {images} images, 512×512, 16 bits …",
        2 * rounds
    );
    for r in 0..rounds {
        series(&root.join(format!("b{r}")), images)?;
        series(&root.join(format!("c{r}")), images)?;
    }
    let bytes: u64 = std::fs::read_dir(root.join("b0"))?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();

    // The relay, in this process, with its own data directory.
    config.data.dir = root.join("relay");
    config.http.listen = "127.0.0.1:0".parse()?;
    config.imaging.listen = Some("127.0.0.1:0".parse()?);
    config.signaling.media_listen = None;
    config.imaging.tls_listen = None;
    // Its destination, DCMTK's storescp, is on this machine.
    config.outbound.allow = vec!["127.0.0.0/8".parse()?];
    // Its administrator, made for this run on its own empty database, signs in with the
    // password alone: the benchmark sets up nodes and destinations, it tests no sign-in.
    config.auth.two_factor_roles = Vec::new();
    let config_is_postgres = config.database_url().starts_with("postgres");
    let prepared_bytes = config.imaging.spool_prepared_bytes;
    let prepared = duikou::startup::prepare(config).await?;
    let (admin, password) = prepared
        .first_admin
        .clone()
        .context("the benchmark needs an empty database")?;
    let relay = prepared.dicom_addr().context("DICOM listens")?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(duikou::startup::run(listener, prepared, None, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": admin, "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().context("a token")?.to_owned();
    // The printed password is one-time: replaced before anything else answers.
    http.post(format!("{base}/api/v1/me/password"))
        .bearer_auth(&token)
        .json(&json!({"current": password, "new": format!("{password}-replaced")}))
        .send()
        .await?
        .error_for_status()
        .context("replacing the one-time password")?;
    let api = |method: reqwest::Method, path: String, body: serde_json::Value| {
        http.request(method, format!("{base}/api/v1{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let named = |name: &'static str| {
        let http = http.clone();
        let (base, token) = (base.clone(), token.clone());
        async move {
            let list: serde_json::Value = http
                .get(format!("{base}/api/v1/institutions"))
                .query(&[("name", name)])
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            list.as_array()
                .and_then(|l| l.iter().find(|i| i["name"] == name))
                .and_then(|i| i["id"].as_i64())
                .context("a seeded institution")
        }
    };
    let county = named("台山市人民医院").await?;
    let tertiary = named("江门市中心医院").await?;
    let today = duikou::registry::today_in_china();
    api(
        reqwest::Method::POST,
        "/pairings".into(),
        json!({
        "supporter": {"kind": "institution", "id": tertiary},
        "supported": {"kind": "institution", "value": county},
        "services": ["imaging_read"],
        "valid_from": today - chrono::TimeDelta::days(1),
        "valid_to": today + chrono::TimeDelta::days(365)}),
    )
    .await?
    .error_for_status()?;
    api(
        reqwest::Method::POST,
        format!("/institutions/{county}/dicom-nodes"),
        json!({"ae_title": "BENCH", "host": "*"}),
    )
    .await?
    .error_for_status()?;

    // (b) ingest only: nothing to forward to yet.
    let mut ab = Vec::new();
    for r in 0..rounds {
        let dir = root.join(format!("b{r}"));
        spool_prepared(&http, &base, prepared_bytes).await?;
        let a = dcmtk_to_dcmtk(root, &dir)?;
        spool_prepared(&http, &base, prepared_bytes).await?;
        let b = relay_timed(async {
            storescu(&dir, "BENCH", "DUIKOU", relay.port())?;
            Ok(())
        })
        .await?;
        ab.push((a, b));
    }

    // (c) through the relay to a destination.
    let port_c = free_port()?;
    let out_c = root.join("out-c");
    let scp_c = storescp(&out_c, port_c, "JMZX_PACS")?;
    api(
        reqwest::Method::PUT,
        format!("/institutions/{tertiary}/imaging-destination"),
        json!({"ae_title": "JMZX_PACS", "host": "127.0.0.1", "port": port_c}),
    )
    .await?
    .error_for_status()?;
    let mut ac = Vec::new();
    // How long after `storescu`'s last success the destination had the last instance.
    let mut tails = Vec::new();
    for r in 0..rounds {
        let dir = root.join(format!("c{r}"));
        spool_prepared(&http, &base, prepared_bytes).await?;
        let a = dcmtk_to_dcmtk(root, &dir)?;
        spool_prepared(&http, &base, prepared_bytes).await?;
        let mut sent = Duration::ZERO;
        let c = relay_timed(async {
            sent = storescu(&dir, "BENCH", "DUIKOU", relay.port())?;
            let deadline = Instant::now() + Duration::from_secs(600);
            let expected = images;
            while count(&out_c) < expected {
                if Instant::now() > deadline {
                    bail!("the destination got only {} of {expected}", count(&out_c));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok(())
        })
        .await?;
        // Removed like (a)'s, so that each round starts with as much memory free.
        empty(&out_c)?;
        ac.push((a, c));
        tails.push(c.wall.saturating_sub(sent));
    }
    drop(scp_c);
    let _ = stop.send(());
    let _ = server.await;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mb = bytes as f64 / 1e6;
    let db = if config_is_postgres {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!("\n{images} images, {mb:.1} MB, {cores} cores, {db}, {rounds} rounds");
    if let Some((free, cached)) = free_memory {
        // With little memory free, every write first makes the kernel reclaim page cache,
        // which slows (a) more than the relay: the ratios look better than they are.
        println!("memory at the start: {free:.1} GiB free, {cached:.1} GiB page cache");
    }
    if free_page_reporting() {
        // Memory freed goes back to the host, and the next use of it waits for the host
        // to give it again: a run that writes into such memory is slower, whichever side.
        println!("free page reporting: on (a VM whose host takes back freed memory; runs vary)");
    }
    if prepared_bytes > 0 {
        println!(
            "spool: {} MiB prepared before each timed run (imaging.spool_prepared_bytes)",
            prepared_bytes / (1024 * 1024)
        );
    } else {
        println!("spool: no room prepared (--unprepared)");
    }
    println!(
        "{:<52} {:>8} {:>8} {:>8} {:>9}",
        "", "seconds", "× (a)", "CPU s", "stolen s"
    );
    let secs = |t: &Timed| t.wall.as_secs_f64();
    let report = |name: &str, pairs: &[(Timed, Timed)]| {
        for (n, (a, x)) in pairs.iter().enumerate() {
            println!(
                "{:<52} {:>8.3} {:>8} {:>8.2} {:>9.2}",
                format!("(a) storescu → DCMTK storescp, round {}", n + 1),
                secs(a),
                "",
                a.cpu,
                a.stolen
            );
            println!(
                "{:<52} {:>8.3} {:>8.2} {:>8.2} {:>9.2}",
                format!("{name}, round {}", n + 1),
                secs(x),
                secs(x) / secs(a),
                x.cpu,
                x.stolen
            );
        }
        let ratios = pairs.iter().map(|(a, x)| secs(x) / secs(a)).collect();
        median(ratios)
    };
    let b = report("(b) storescu → relay, last success", &ab);
    let c = report("(c) storescu → relay → storescp, last there", &ac);
    let tails: Vec<String> = tails
        .iter()
        .map(|t| format!("{:.3}", t.as_secs_f64()))
        .collect();
    println!(
        "tail of (c), seconds from storescu's last success to the last instance there: {}",
        tails.join(", ")
    );
    println!("median ratios: (b) {b:.2} × (a), (c) {c:.2} × (a)");
    println!("targets: (b) ≤ 1.2 × (a), (c) ≤ 1.5 × (a)");
    println!(
        "CPU s: of DCMTK's storescu and storescp for (a), of the relay for (b) and (c) \
         (the sender and the destination not counted)"
    );
    println!(
        "stolen s: CPU seconds the host took from this VM during the run, all cores \
         (/proc/stat's steal; a round with much stolen is slower, whichever side it times)"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_is_the_eighth_number_of_the_cpu_line_in_ticks_of_10_ms() {
        let stat = "cpu  9500 12 3100 880000 410 0 77 269 0 0\n\
                    cpu0 4700 6 1500 440000 200 0 40 130 0 0\n\
                    cpu1 4800 6 1600 440000 210 0 37 139 0 0\n\
                    intr 123 0 0\n";
        assert_eq!(steal_seconds(stat), Some(2.69));
        // A kernel too old to count steal, or no cpu line: nothing to read.
        assert_eq!(steal_seconds("cpu  9500 12 3100 880000\n"), None);
        assert_eq!(steal_seconds("intr 123\n"), None);
    }
}
