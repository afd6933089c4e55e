//! Browser scenarios: `node tests/browser/<name>.mjs`, Playwright (`playwright-core` from
//! npm, pinned in `tests/browser/package-lock.json`) driving Debian's Chromium against a
//! gateway under test. The scenario library and how to run one by hand are described at
//! the top of `tests/browser/lib.mjs`.
//!
//! Screenshots land in `target/browser-artifacts/<artifacts>/` (under `CARGO_TARGET_DIR`
//! when it is set), emptied at the start of each run: `login-zh.png`, … as the scenario
//! names them, and `failure-<n>.png` of every open page when it fails.
//!
//! `tests/run` installs Chromium, Node.js and the npm packages when they are missing. A
//! missing one fails the test with a message saying so; a browser test is never skipped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::Value;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use crate::{Backend, workspace_root};

/// How long one scenario may run before it is stopped and fails.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// The browser the scenarios start: `DUIKOU_CHROMIUM`, else Debian's.
pub fn chromium() -> PathBuf {
    std::env::var_os("DUIKOU_CHROMIUM").map_or_else(|| "/usr/bin/chromium".into(), PathBuf::from)
}

/// `tests/browser/`, where the scenarios and their npm packages are.
pub fn scenarios_dir() -> PathBuf {
    workspace_root().join("tests").join("browser")
}

/// Where the screenshots of a run named `artifacts` go.
pub fn artifacts_dir(artifacts: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
        .join("browser-artifacts")
        .join(artifacts)
}

/// `name-sqlite` or `name-postgres`: an artifacts directory for a test that runs on both.
pub fn on_backend(name: &str, backend: Backend) -> String {
    match backend {
        Backend::Sqlite => format!("{name}-sqlite"),
        Backend::Postgres => format!("{name}-postgres"),
    }
}

/// Fails, saying how to install it, unless Node.js, the pinned `playwright-core` and
/// Chromium are there.
pub fn check_installed() -> anyhow::Result<()> {
    const HOW: &str = "run tests/run, which installs what the browser tests need, \
                       or by hand: apt-get install chromium nodejs npm (Node.js 20 or newer); \
                       npm ci --prefix tests/browser";
    let dir = scenarios_dir();
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| anyhow::anyhow!("Node.js is not installed (node: {e}): {HOW}"))?;
    let version = String::from_utf8_lossy(&node.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        bail!(
            "playwright-core needs Node.js 20 or newer; `node --version` says {version:?}: {HOW}"
        );
    }
    let pinned = read_json(&dir.join("package.json"))?["dependencies"]["playwright-core"]
        .as_str()
        .map(str::to_owned)
        .context("tests/browser/package.json names no playwright-core version")?;
    let installed_file = dir.join("node_modules/playwright-core/package.json");
    if !installed_file.exists() {
        bail!("playwright-core is not installed in tests/browser/node_modules: {HOW}");
    }
    let installed = read_json(&installed_file)?["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if installed != pinned {
        bail!(
            "tests/browser/node_modules has playwright-core {installed}, package.json pins {pinned}: {HOW}"
        );
    }
    let browser = chromium();
    if !browser.exists() {
        bail!(
            "no Chromium at {} (DUIKOU_CHROMIUM overrides the path): {HOW}",
            browser.display()
        );
    }
    Ok(())
}

/// Everything `from` gives until it ends (what was read, if reading fails).
async fn read_all(mut from: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut all = Vec::new();
    let _ = from.read_to_end(&mut all).await;
    all
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Runs the scenario `tests/browser/<scenario>.mjs` against the gateway at `base_url`,
/// with `input` (usernames, passwords, ids) as `DUIKOU_INPUT`, its screenshots going to
/// [`artifacts_dir`]`(artifacts)`. Returns the JSON of the last line it printed (`Null` if
/// none). Fails with its whole output if it fails, or if it takes longer than [`TIMEOUT`].
pub async fn run_scenario(
    scenario: &str,
    artifacts: &str,
    base_url: &str,
    input: Value,
) -> anyhow::Result<Value> {
    check_installed()?;
    let script = scenarios_dir().join(format!("{scenario}.mjs"));
    if !script.exists() {
        bail!("no scenario {}", script.display());
    }
    let out = artifacts_dir(artifacts);
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let mut child = Command::new("node")
        .arg(&script)
        .current_dir(workspace_root())
        .env("DUIKOU_URL", base_url)
        .env("DUIKOU_ARTIFACTS", &out)
        .env("DUIKOU_INPUT", input.to_string())
        .env("DUIKOU_CHROMIUM", chromium())
        // The scenario stops itself first, with screenshots, if it can.
        .env(
            "DUIKOU_DEADLINE_MS",
            TIMEOUT
                .saturating_sub(Duration::from_secs(20))
                .as_millis()
                .to_string(),
        )
        .env("FORCE_COLOR", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting node")?;
    // Read on their own, so that what the scenario says after a stop is kept too.
    let stdout = tokio::spawn(read_all(child.stdout.take().expect("piped")));
    let stderr = tokio::spawn(read_all(child.stderr.take().expect("piped")));
    let status = match tokio::time::timeout(TIMEOUT, child.wait()).await {
        Ok(status) => Some(status.context("waiting for node")?),
        Err(_) => {
            // SIGTERM first: the scenario then reports and screenshots its pages and closes
            // the browser (which also ends when node does: Playwright talks to it over a
            // pipe).
            if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
            None
        }
    };
    let collect = |task: tokio::task::JoinHandle<Vec<u8>>| async move {
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default()
    };
    let (out_text, err_text) = (collect(stdout).await, collect(stderr).await);
    let output = format!(
        "--- stdout\n{}\n--- stderr\n{}\n--- screenshots in {}",
        String::from_utf8_lossy(&out_text).trim_end(),
        String::from_utf8_lossy(&err_text).trim_end(),
        out.display()
    );
    match status {
        None => bail!(
            "browser scenario {scenario} took longer than {} s and was stopped\n{output}",
            TIMEOUT.as_secs()
        ),
        Some(status) if !status.success() => {
            bail!("browser scenario {scenario} failed ({status})\n{output}")
        }
        Some(_) => {}
    }
    let text = String::from_utf8_lossy(&out_text);
    Ok(text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null))
}
