//! Checks of the repository itself, run with the other tests: its text speaks of the
//! product, never of how it is being built (numbered work items, the stretches of work
//! that deliver them, version-control lines of work), no crate may contain unsafe code,
//! the gateway binary carries no benchmark, and the test command reads Debian's package
//! lists once. This file passes its own check: the phrases it must find are assembled
//! from pieces in the test that proves the pattern finds them.

use std::path::{Path, PathBuf};
use std::process::Command;

use regex::Regex;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every file git tracks, relative to the root.
fn tracked() -> Vec<PathBuf> {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .collect()
}

/// What speaks of the work rather than of the product: a work item or a stretch of work
/// with its number, the rounds of the work, the tool that lists it, and version-control
/// lines of work. (A benchmark's rounds, a teaching session and its number of trainees are
/// the product's own.)
fn work_items() -> Regex {
    Regex::new(
        r"(?ix)
        \b(issue|session|sprint|ticket|milestone|iteration)s?\ ?(\#|no\.?\ ?)?[0-9]+\b
        | \b(development|work|review)\ rounds?\b
        | see\ `issues`
        | \bbranch(es)?\b
        | \bworktrees?\b
        ",
    )
    .expect("a valid pattern")
}

/// The lines of `text` that `pattern` finds, as `path:line: text`.
fn findings(path: &Path, text: &str, pattern: &Regex) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| pattern.is_match(line))
        .map(|(n, line)| format!("{}:{}: {}", path.display(), n + 1, line.trim()))
        .collect()
}

#[test]
fn no_tracked_file_speaks_of_work_items_rounds_or_branches() {
    let pattern = work_items();
    let mut found = Vec::new();
    let mut read = 0;
    for path in tracked() {
        // Binary files (images, DICOM samples) hold no prose.
        let Ok(text) = std::fs::read_to_string(root().join(&path)) else {
            continue;
        };
        read += 1;
        found.extend(findings(&path, &text, &pattern));
    }
    assert!(
        read > 100,
        "only {read} text files read: is this the repository?"
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_pattern_finds_what_speaks_of_the_work_and_leaves_the_product_alone() {
    let pattern = work_items();
    // Assembled from pieces, so that this file's own lines do not match.
    let work = |parts: &[&str]| parts.concat();
    for text in [
        work(&["// is", "sue 6 asked for this"]),
        work(&["Is", "sue #12: the relay"]),
        work(&["as decided in ses", "sion 17"]),
        work(&["Spr", "int 3 left it out"]),
        work(&["merged from the feature bra", "nch"]),
        work(&["see `iss", "ues` for what is open"]),
        work(&["in development ", "round 2"]),
        work(&["left for the next work ", "round"]),
    ] {
        assert!(pattern.is_match(&text), "not found: {text}");
    }
    for product in [
        "a teaching session for twenty trainees",
        "session tokens expire after 12 hours",
        "runs of three rounds with the defaults",
        "--rounds 3",
        "issues a CA, a server and a client certificate",
        "the session's room opens 15 minutes early",
    ] {
        assert!(!pattern.is_match(product), "found: {product}");
    }
}

/// A `[lints]` table that inherits the workspace's, or a `[lints.rust]` table that forbids
/// unsafe code itself.
fn forbids_unsafe(manifest: &toml::Table) -> bool {
    let Some(lints) = manifest.get("lints").and_then(toml::Value::as_table) else {
        return false;
    };
    if lints.get("workspace").and_then(toml::Value::as_bool) == Some(true) {
        return true;
    }
    lints
        .get("rust")
        .and_then(|rust| rust.get("unsafe_code"))
        .and_then(toml::Value::as_str)
        == Some("forbid")
}

#[test]
fn every_crate_forbids_unsafe_code() {
    let read = |path: &Path| -> toml::Table {
        let text = std::fs::read_to_string(root().join(path)).expect("a manifest");
        text.parse()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let workspace = read(Path::new("Cargo.toml"));
    let unsafe_code = workspace
        .get("workspace")
        .and_then(|w| w.get("lints"))
        .and_then(|l| l.get("rust"))
        .and_then(|r| r.get("unsafe_code"))
        .and_then(toml::Value::as_str);
    assert_eq!(
        unsafe_code,
        Some("forbid"),
        "the workspace's unsafe_code lint"
    );
    let packages: Vec<PathBuf> = tracked()
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "Cargo.toml"))
        .filter(|p| read(p).contains_key("package"))
        .collect();
    assert!(packages.len() >= 6, "only {} crates found", packages.len());
    let allowing: Vec<String> = packages
        .iter()
        .filter(|p| !forbids_unsafe(&read(p)))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        allowing.is_empty(),
        "crates that do not forbid unsafe code: {}",
        allowing.join(", ")
    );
}

#[test]
fn the_gateway_carries_no_benchmark_and_its_peers() {
    let manifest: toml::Table = std::fs::read_to_string(root().join("gateway/Cargo.toml"))
        .expect("the gateway's manifest")
        .parse()
        .expect("valid TOML");
    let dependencies = manifest
        .get("dependencies")
        .and_then(toml::Value::as_table)
        .expect("dependencies");
    for name in ["str0m", "rustix"] {
        assert!(
            !dependencies.contains_key(name),
            "the gateway depends on {name}, which only the benchmark needs"
        );
    }
    assert!(
        !root().join("gateway/src/bench").exists(),
        "the benchmark lives in tests/bench"
    );
}

#[test]
fn the_test_command_reads_the_package_lists_once() {
    let run = std::fs::read_to_string(root().join("tests/run")).expect("tests/run");
    let updates = run
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("apt-get update"))
        .count();
    assert_eq!(
        updates, 1,
        "apt-get update appears {updates} times in tests/run"
    );
}
