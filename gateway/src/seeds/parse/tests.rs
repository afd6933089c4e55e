//! The seed rules of `000` and `003`, checked on the real rosters and on broken copies.

use super::*;
use crate::seeds::FILES;

fn source_with(file: &str, edit: impl FnOnce(&str) -> String) -> SeedSource {
    let mut src = SeedSource::embedded();
    let index = FILES.iter().position(|f| *f == file).unwrap();
    src.files[index].1 = edit(&src.files[index].1);
    src
}

fn problems(src: &SeedSource) -> Vec<String> {
    parse(src)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn station<'a>(set: &'a SeedSet, name: &str) -> Vec<&'a SeedInstitution> {
    set.institutions.iter().filter(|i| i.name == name).collect()
}

#[test]
fn the_rosters_parse_into_100_village_pairings() {
    let set = parse(&SeedSource::embedded()).unwrap();
    let village = |p: &&SeedPairing| matches!(p.supporter, SeedSupporter::Clinician(_));
    assert_eq!(set.pairings.iter().filter(village).count(), 100);
    assert_eq!(set.clinicians.len(), 100);
    // Four county systems with an assisting hospital, three Huancui villages.
    let regions = set
        .pairings
        .iter()
        .filter(|p| matches!(p.supported, SeedSupported::Region(_)))
        .count();
    assert_eq!(regions, 4);
    assert_eq!(set.pairings.len(), 107);
}

#[test]
fn blank_cells_repeat_the_value_above() {
    let set = parse(&SeedSource::embedded()).unwrap();
    let clinician = |name: &str| set.clinicians.iter().find(|c| c.name == name).unwrap();
    // 刘双贤's unit cell is blank: 台山市妇幼保健院 from 郭江斌's row above.
    assert_eq!(
        set.institutions[clinician("刘双贤").institution].name,
        "台山市妇幼保健院"
    );
    // 谭卫群's town cell is blank: 川岛镇.
    assert_eq!(station(&set, "川岛镇塔边村卫生站").len(), 1);
}

#[test]
fn villages_of_the_same_name_in_different_towns_stay_distinct() {
    let set = parse(&SeedSource::embedded()).unwrap();
    assert_eq!(station(&set, "海宴镇联和村卫生站").len(), 1);
    assert_eq!(station(&set, "深井镇联和村卫生站").len(), 1);
}

#[test]
fn stray_spaces_are_normalised() {
    let set = parse(&SeedSource::embedded()).unwrap();
    assert!(set.clinicians.iter().any(|c| c.name == "詹俊"));
    assert_eq!(station(&set, "良西镇龙山村卫生站").len(), 1);
    assert!(set.institutions.iter().all(|i| !i.name.contains(' ')));
}

#[test]
fn one_unit_written_two_ways_is_one_institution() {
    let set = parse(&SeedSource::embedded()).unwrap();
    let units: Vec<usize> = ["钟丽群", "冯艳玲", "巫哲谦"]
        .iter()
        .map(|n| {
            set.clinicians
                .iter()
                .find(|c| c.name == *n)
                .unwrap()
                .institution
        })
        .collect();
    assert!(units.iter().all(|u| *u == units[0]));
    assert_eq!(
        set.institutions[units[0]].name,
        "鹤山市妇幼保健计划生育服务中心"
    );
}

#[test]
fn village_suffixes_do_not_double() {
    let set = parse(&SeedSource::embedded()).unwrap();
    assert_eq!(
        station(&set, "址山镇云东村卫生站").len(),
        1,
        "云东村 + 卫生站, not 云东村村"
    );
}

#[test]
fn a_junior_clinician_is_refused_with_the_rule() {
    let src = source_with("jiangmen_villages.csv", |t| {
        t.replacen("副主任医师", "医师", 1)
    });
    let p = problems(&src);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("seeds/jiangmen_villages.csv:2: 郭江斌 holds 医师 (junior)"),
        "{p:?}"
    );
}

#[test]
fn a_missing_village_breaks_the_task_table_count() {
    let src = source_with("jiangmen_villages.csv", |t| {
        t.lines()
            .filter(|l| !l.contains("许文妙"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let p = problems(&src);
    assert_eq!(
        p,
        [
            "seeds/jiangmen_tasks.csv:5: 台山市: the task table asks for 37 villages, the roster lists 36"
        ]
    );
}

#[test]
fn every_problem_is_reported_not_just_the_first() {
    let src = source_with("jiangmen_villages.csv", |t| {
        t.replacen("台山市第二人民医院", "不存在的医院", 1)
            .replacen(",女,", ",?,", 1)
            .replacen(",北陡镇,", ",,", 1)
    });
    let p = problems(&src);
    assert!(
        p.iter()
            .any(|m| m.contains("unit: 不存在的医院 is not in institutions.csv")),
        "{p:?}"
    );
    assert!(p.iter().any(|m| m.contains("sex:")), "{p:?}");
    assert!(
        p.iter()
            .any(|m| m.contains(":2: town is blank and there is no value above it")),
        "{p:?}"
    );
}

#[test]
fn a_duplicate_village_is_refused() {
    let src = source_with("jiangmen_villages.csv", |t| {
        t.replacen(",那琴,", ",石蕉,", 1)
    });
    let p = problems(&src);
    assert!(
        p.iter()
            .any(|m| m.contains(":3: 石蕉 in 北陡镇 is already listed on line 2")),
        "{p:?}"
    );
}

#[test]
fn a_wrong_header_is_reported_on_line_1() {
    let src = source_with("huancui_villages.csv", |t| {
        t.replacen("district", "county", 1)
    });
    let p = problems(&src);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("seeds/huancui_villages.csv:1: expected the columns"),
        "{p:?}"
    );
}

#[test]
fn an_unknown_level_in_institutions_is_reported() {
    let src = source_with("institutions.csv", |t| {
        t.replacen(",tertiary,", ",grade-a,", 1)
    });
    let p = problems(&src);
    assert!(
        p.iter()
            .any(|m| m.starts_with("seeds/institutions.csv:2: level:")),
        "{p:?}"
    );
}

/// Seed files come from operators; no edit of them may make the importer panic. Random
/// byte-level damage (deleted, duplicated, swapped spans, stray commas, quotes and
/// newlines) must give either a valid set or problems.
#[test]
fn damaged_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(20161);
    let embedded = SeedSource::embedded();
    for round in 0..400 {
        let mut src = embedded.clone();
        let file = rng.gen_range(0..src.files.len());
        let mut chars: Vec<char> = src.files[file].1.chars().collect();
        for _ in 0..rng.gen_range(1..6) {
            let at = rng.gen_range(0..chars.len());
            match rng.gen_range(0..5) {
                0 => {
                    let end = (at + rng.gen_range(1..40)).min(chars.len());
                    chars.drain(at..end);
                }
                1 => chars.insert(at, [',', '"', '\n', ' ', '村', '\r'][rng.gen_range(0..6)]),
                2 => {
                    let end = (at + rng.gen_range(1..80)).min(chars.len());
                    let span: Vec<char> = chars[at..end].to_vec();
                    let to = rng.gen_range(0..chars.len());
                    chars.splice(to..to, span);
                }
                3 => chars.truncate(at),
                _ => {
                    let other = rng.gen_range(0..chars.len());
                    chars.swap(at, other);
                }
            }
            if chars.is_empty() {
                break;
            }
        }
        src.files[file].1 = chars.into_iter().collect();
        let result = std::panic::catch_unwind(|| parse(&src));
        assert!(
            result.is_ok(),
            "round {round} panicked on damaged {}",
            FILES[file]
        );
    }
}
