//! Reading and checking the seed CSVs. See the module documentation of [`crate::seeds`].

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;

use super::{
    Problem, SeedClinician, SeedInstitution, SeedPairing, SeedSet, SeedSource, SeedSupported,
    SeedSupporter,
};
use crate::domain::{Kind, Level, RegionPath, Service, Services, Sex, TitleRank, normalize_name};

/// The region of the Jiangmen documents (`000`, `002`).
const JIANGMEN: &str = "广东省/江门市";
/// The region of the Huancui document (`003`).
const WEIHAI: &str = "山东省/威海市";

/// `000`: 组织实施 2016年5月—2018年6月, consolidated until the end of 2018.
fn jiangmen_period() -> (NaiveDate, NaiveDate) {
    (date(2016, 5, 1), date(2018, 12, 31))
}

/// `003`: issued 2019-10-21, visits until the end of 2020.
fn huancui_period() -> (NaiveDate, NaiveDate) {
    (date(2019, 10, 21), date(2020, 12, 31))
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid calendar date")
}

/// A dispatched clinician or visiting team consults and teaches at its village (`000`:
/// 坐诊, 传帮带教; `003`: 巡诊, 宣讲).
fn village_services() -> Services {
    Services::new([Service::Consult, Service::Teaching]).expect("non-empty")
}

/// Parses and checks every seed file; returns every problem found, or the set to import.
pub fn parse(src: &SeedSource) -> Result<SeedSet, Vec<Problem>> {
    let mut cx = Context::default();
    cx.institutions(src.file(0));
    let tasks = cx.tasks(src.file(1));
    cx.jiangmen_villages(src.file(2), &tasks);
    cx.huancui_villages(src.file(3));
    if cx.problems.is_empty() {
        Ok(cx.set)
    } else {
        Err(cx.problems)
    }
}

/// One row of the task table, as far as the roster check needs it.
struct Task {
    line: u64,
    villages: Option<usize>,
}

#[derive(Default)]
struct Context {
    set: SeedSet,
    problems: Vec<Problem>,
    /// Normalised canonical names and aliases of institutions.csv → index.
    by_name: HashMap<String, usize>,
    /// (region, name) → index, for every institution in the set.
    by_key: HashMap<(RegionPath, String), usize>,
    /// The task table's file name, where a village count that does not match is reported.
    tasks_file: String,
}

struct Rows<'a> {
    file: &'a str,
    rows: Vec<(u64, Vec<String>)>,
}

impl Context {
    fn problem(&mut self, file: &str, line: u64, message: impl Into<String>) {
        self.problems.push(Problem {
            file: file.to_owned(),
            line,
            message: message.into(),
        });
    }

    /// Reads a CSV whose header must be exactly `columns`.
    fn read<'a>(&mut self, (file, text): (&'a str, &str), columns: &[&str]) -> Rows<'a> {
        let mut rows = Vec::new();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        match reader.headers() {
            Ok(h) if h.iter().eq(columns.iter().copied()) => {}
            Ok(h) => {
                let found = h.iter().collect::<Vec<_>>().join(",");
                self.problem(
                    file,
                    1,
                    format!("expected the columns {}, found {found}", columns.join(",")),
                );
                return Rows { file, rows };
            }
            Err(e) => {
                self.problem(file, 1, format!("unreadable header: {e}"));
                return Rows { file, rows };
            }
        }
        for record in reader.records() {
            match record {
                Ok(r) => {
                    let line = r.position().map_or(0, |p| p.line());
                    if r.len() != columns.len() {
                        self.problem(
                            file,
                            line,
                            format!("expected {} cells, found {}", columns.len(), r.len()),
                        );
                        continue;
                    }
                    rows.push((line, r.iter().map(str::to_owned).collect()));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    self.problem(file, line, format!("unreadable row: {e}"));
                }
            }
        }
        Rows { file, rows }
    }

    fn add_institution(&mut self, inst: SeedInstitution) -> usize {
        let key = (inst.region.clone(), inst.name.clone());
        if let Some(&i) = self.by_key.get(&key) {
            return i;
        }
        self.set.institutions.push(inst);
        let i = self.set.institutions.len() - 1;
        self.by_key.insert(key, i);
        i
    }

    /// Resolves a unit as written: exactly, through an alias, or written without the
    /// name of its city (`妇幼保健计划生育服务中心` in the 鹤山市 rows).
    fn resolve_unit(&self, written: &str, city: Option<&str>) -> Option<usize> {
        let name = normalize_name(written);
        self.by_name
            .get(&name)
            .copied()
            .or_else(|| city.and_then(|c| self.by_name.get(&format!("{c}{name}")).copied()))
    }

    fn institutions(&mut self, file: (&str, &str)) {
        let rows = self.read(
            file,
            &["name", "aliases", "level", "kind", "region", "source"],
        );
        for (line, cells) in rows.rows {
            let f = rows.file;
            let name = normalize_name(&cells[0]);
            if name.is_empty() {
                self.problem(f, line, "name is blank");
                continue;
            }
            let level = cells[2].trim().parse::<Level>();
            let kind = cells[3].trim().parse::<Kind>();
            let region = RegionPath::parse(&cells[4]);
            let (level, kind, region) = match (level, kind, region) {
                (Ok(l), Ok(k), Ok(r)) => (l, k, r),
                (l, k, r) => {
                    for msg in [
                        l.err().map(|e| format!("level: {e}")),
                        k.err().map(|e| format!("kind: {e}")),
                        r.err().map(|e| format!("region: {e}")),
                    ]
                    .into_iter()
                    .flatten()
                    {
                        self.problem(f, line, msg);
                    }
                    continue;
                }
            };
            let names: Vec<String> = std::iter::once(name.clone())
                .chain(
                    cells[1]
                        .split('|')
                        .map(normalize_name)
                        .filter(|a| !a.is_empty()),
                )
                .collect();
            if let Some(taken) = names.iter().find(|n| self.by_name.contains_key(*n)) {
                self.problem(
                    f,
                    line,
                    format!("{taken} names an institution listed above already"),
                );
                continue;
            }
            let i = self.add_institution(SeedInstitution {
                name,
                level,
                kind,
                region,
                remote: false,
            });
            for n in names {
                self.by_name.insert(n, i);
            }
        }
    }

    fn tasks(&mut self, file: (&str, &str)) -> BTreeMap<String, Task> {
        self.tasks_file = file.0.to_owned();
        let rows = self.read(
            file,
            &[
                "supporter",
                "assisted_by",
                "supported",
                "villages",
                "poor_households",
            ],
        );
        let mut tasks = BTreeMap::new();
        let (from, to) = jiangmen_period();
        for (line, cells) in rows.rows {
            let f = rows.file;
            let supported = normalize_name(&cells[2]);
            if supported.is_empty() {
                self.problem(f, line, "supported is blank");
                continue;
            }
            let villages = match cells[3].trim() {
                "" => None,
                n => match n.parse::<usize>() {
                    Ok(n) => Some(n),
                    Err(_) => {
                        self.problem(f, line, format!("villages: {n:?} is not a whole number"));
                        continue;
                    }
                },
            };
            let region = match RegionPath::parse(&format!("{JIANGMEN}/{supported}")) {
                Ok(r) => r,
                Err(e) => {
                    self.problem(f, line, format!("supported: {e}"));
                    continue;
                }
            };
            let assisted_by = normalize_name(&cells[1]);
            if !assisted_by.is_empty() {
                let Some(hospital) = self.resolve_unit(&assisted_by, None) else {
                    self.problem(
                        f,
                        line,
                        format!("assisted_by: {assisted_by} is not in institutions.csv"),
                    );
                    continue;
                };
                self.set.pairings.push(SeedPairing {
                    key: format!("jiangmen_tasks:{supported}"),
                    supporter: SeedSupporter::Institution(hospital),
                    supported: SeedSupported::Region(region),
                    services: Services::all(),
                    valid_from: from,
                    valid_to: to,
                });
            }
            if tasks
                .insert(supported.clone(), Task { line, villages })
                .is_some()
            {
                self.problem(
                    f,
                    line,
                    format!("{supported} appears twice in the task table"),
                );
            }
        }
        tasks
    }

    fn jiangmen_villages(&mut self, file: (&str, &str), tasks: &BTreeMap<String, Task>) {
        let rows = self.read(
            file,
            &[
                "no",
                "city",
                "town",
                "village",
                "clinician",
                "sex",
                "unit",
                "title",
                "specialty",
            ],
        );
        let f = rows.file;
        let (from, to) = jiangmen_period();
        // Merged cells: a blank city, town or unit repeats the value above, within a city.
        let (mut city, mut town, mut unit) = (String::new(), String::new(), String::new());
        let mut per_city: BTreeMap<String, (u64, usize)> = BTreeMap::new();
        let mut seen: HashMap<(String, String, String), u64> = HashMap::new();
        let mut clinicians: HashMap<(usize, String), usize> = HashMap::new();
        for (line, cells) in rows.rows {
            let cell = |i: usize| normalize_name(&cells[i]);
            if !cell(1).is_empty() && cell(1) != city {
                city = cell(1);
                town.clear();
                unit.clear();
            }
            if !cell(2).is_empty() {
                town = cell(2);
            }
            if !cell(6).is_empty() {
                unit = cell(6);
            }
            let mut bad = Vec::new();
            for (value, column) in [(&city, "city"), (&town, "town"), (&unit, "unit")] {
                if value.is_empty() {
                    bad.push(format!(
                        "{column} is blank and there is no value above it to repeat"
                    ));
                }
            }
            let village = cell(3);
            let name = cell(4);
            if village.is_empty() {
                bad.push("village is blank".into());
            }
            if name.is_empty() {
                bad.push("clinician is blank".into());
            }
            let sex = Sex::of_roster(&cells[5]);
            if sex.is_none() {
                bad.push(format!("sex: {:?} is neither 男 nor 女", cells[5]));
            }
            let title = cell(7);
            let rank = TitleRank::of_title(&title);
            match rank {
                None => bad.push(format!("title: {title:?} is not a known professional title")),
                Some(r) if r < TitleRank::Intermediate => bad.push(format!(
                    "{name} holds {title} ({r}); dispatched clinicians must hold an intermediate title or higher (000, 派出对象)"
                )),
                Some(_) => {}
            }
            let unit_index = self.resolve_unit(&unit, Some(&city));
            if unit_index.is_none() && !unit.is_empty() {
                bad.push(format!("unit: {unit} is not in institutions.csv"));
            }
            if !city.is_empty() && !tasks.contains_key(&city) {
                bad.push(format!("city: {city} is not in the task table"));
            }
            if !village.is_empty() {
                if let Some(first) =
                    seen.insert((city.clone(), town.clone(), village.clone()), line)
                {
                    bad.push(format!(
                        "{village} in {town} is already listed on line {first}"
                    ));
                }
            }
            if !city.is_empty() {
                per_city.entry(city.clone()).or_insert((line, 0)).1 += 1;
            }
            let (Some(sex), Some(rank), Some(unit_index), true) =
                (sex, rank, unit_index, bad.is_empty())
            else {
                for msg in bad {
                    self.problem(f, line, msg);
                }
                continue;
            };
            let base = village.strip_suffix('村').unwrap_or(&village);
            let region = RegionPath::parse(&format!("{JIANGMEN}/{city}/{town}/{base}村"));
            let Ok(region) = region else {
                self.problem(f, line, "village: not a valid place name");
                continue;
            };
            let station = self.add_institution(SeedInstitution {
                name: format!("{town}{base}村卫生站"),
                level: Level::VillageStation,
                kind: Kind::VillageStation,
                region,
                // The supported stations are all 偏远 老区村 (000, 受援单位).
                remote: true,
            });
            let clinician = *clinicians
                .entry((unit_index, name.clone()))
                .or_insert_with(|| {
                    self.set.clinicians.push(SeedClinician {
                        name,
                        sex,
                        institution: unit_index,
                        title,
                        rank,
                        specialty: cell(8),
                    });
                    self.set.clinicians.len() - 1
                });
            self.set.pairings.push(SeedPairing {
                key: format!("jiangmen_villages:{city}/{town}/{village}"),
                supporter: SeedSupporter::Clinician(clinician),
                supported: SeedSupported::Institution(station),
                services: village_services(),
                valid_from: from,
                valid_to: to,
            });
        }
        for (city, task) in tasks {
            let listed = per_city.get(city).map_or(0, |(_, n)| *n);
            if let Some(expected) = task.villages {
                if listed != expected {
                    let tasks_file = self.tasks_file.clone();
                    self.problem(
                        &tasks_file,
                        task.line,
                        format!("{city}: the task table asks for {expected} villages, the roster lists {listed}"),
                    );
                }
            }
        }
        for (city, (line, n)) in per_city {
            if tasks.get(&city).is_some_and(|t| t.villages.is_none()) {
                self.problem(
                    f,
                    line,
                    format!("{city}: the roster lists {n} villages, the task table none"),
                );
            }
        }
    }

    fn huancui_villages(&mut self, file: (&str, &str)) {
        let rows = self.read(file, &["no", "district", "town", "village", "unit"]);
        let (from, to) = huancui_period();
        for (line, cells) in rows.rows {
            let f = rows.file;
            let [district, town, village, unit] = [1, 2, 3, 4].map(|i| normalize_name(&cells[i]));
            if [&district, &town, &village, &unit]
                .iter()
                .any(|s| s.is_empty())
            {
                self.problem(f, line, "district, town, village and unit are all required");
                continue;
            }
            let Some(unit_index) = self.resolve_unit(&unit, Some(&district)) else {
                self.problem(f, line, format!("unit: {unit} is not in institutions.csv"));
                continue;
            };
            let Ok(region) = RegionPath::parse(&format!("{WEIHAI}/{district}/{town}/{village}"))
            else {
                self.problem(f, line, "village: not a valid place name");
                continue;
            };
            let station = self.add_institution(SeedInstitution {
                name: format!("{town}{village}卫生室"),
                level: Level::VillageStation,
                kind: Kind::VillageStation,
                region,
                remote: false,
            });
            self.set.pairings.push(SeedPairing {
                key: format!("huancui_villages:{district}/{town}/{village}"),
                supporter: SeedSupporter::Institution(unit_index),
                supported: SeedSupported::Institution(station),
                services: village_services(),
                valid_from: from,
                valid_to: to,
            });
        }
    }
}

#[cfg(test)]
mod tests;
