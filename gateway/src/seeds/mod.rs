//! The program rosters in `seeds/`: read, checked and turned into registry rows.
//!
//! Parsing is pure: [`parse`] takes the CSV texts and returns either a [`SeedSet`] ready
//! to import in one transaction, or every problem found, each as `file:line: message`.
//! Nothing is imported when any row is bad.
//!
//! The files and their columns are described in `seeds/README.md`. The rules checked
//! here come from the documents: villages per county-level city must match the task
//! table (`000`, 任务分解表), every dispatched clinician holds an intermediate title or
//! higher (`000`, 派出对象), blank cells repeat the value above (merged cells), stray
//! spaces inside names are normalised, villages of the same name in different towns stay
//! distinct, and one unit written two ways is one institution.

mod parse;

use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use sha2::{Digest, Sha256};

use crate::domain::{Kind, Level, RegionPath, Services, Sex, TitleRank};

pub use parse::parse;

/// The seed files, in the order they are read.
pub const FILES: [&str; 4] = [
    "institutions.csv",
    "jiangmen_tasks.csv",
    "jiangmen_villages.csv",
    "huancui_villages.csv",
];

/// The texts of the seed files, with the names problems are reported under.
#[derive(Debug, Clone)]
pub struct SeedSource {
    files: Vec<(String, String)>,
}

impl SeedSource {
    /// The rosters built into the binary, so that `duikou serve` needs no files at all.
    pub fn embedded() -> Self {
        let texts = [
            include_str!("../../../seeds/institutions.csv"),
            include_str!("../../../seeds/jiangmen_tasks.csv"),
            include_str!("../../../seeds/jiangmen_villages.csv"),
            include_str!("../../../seeds/huancui_villages.csv"),
        ];
        Self {
            files: FILES
                .iter()
                .zip(texts)
                .map(|(name, text)| (format!("seeds/{name}"), text.to_owned()))
                .collect(),
        }
    }

    /// Reads the seed files from `dir`.
    pub fn from_dir(dir: &Path) -> std::io::Result<Self> {
        let mut files = Vec::new();
        for name in FILES {
            let path = dir.join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            files.push((path.display().to_string(), text));
        }
        Ok(Self { files })
    }

    /// A digest of every file's text: the import is skipped when this digest was imported.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (_, text) in &self.files {
            h.update((text.len() as u64).to_le_bytes());
            h.update(text.as_bytes());
        }
        hex::encode(h.finalize())
    }

    fn file(&self, index: usize) -> (&str, &str) {
        let (name, text) = &self.files[index];
        (name, text)
    }
}

/// One bad row or cell, located by file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File name as given.
    pub file: String,
    /// 1-based line; the header is line 1.
    pub line: u64,
    /// What is wrong, in words an administrator can act on.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Everything a valid set of seed files puts into the registry.
#[derive(Debug, Clone, Default)]
pub struct SeedSet {
    /// Units, tertiary hospitals, bureaus and village stations, each once.
    pub institutions: Vec<SeedInstitution>,
    /// Dispatched clinicians.
    pub clinicians: Vec<SeedClinician>,
    /// Pairings, each with a stable key so that a second import adds nothing.
    pub pairings: Vec<SeedPairing>,
}

/// An institution to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedInstitution {
    /// Canonical name.
    pub name: String,
    /// Tier.
    pub level: Level,
    /// Kind.
    pub kind: Kind,
    /// Region path.
    pub region: RegionPath,
    /// 偏远 / 老区村.
    pub remote: bool,
}

/// A clinician to create, by index into [`SeedSet::institutions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedClinician {
    /// Normalised name.
    pub name: String,
    /// Sex.
    pub sex: Sex,
    /// Index of the unit in [`SeedSet::institutions`].
    pub institution: usize,
    /// Title as written.
    pub title: String,
    /// Its rank.
    pub rank: TitleRank,
    /// Specialty as written.
    pub specialty: String,
}

/// The supporting side of a seeded pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedSupporter {
    /// Index into [`SeedSet::institutions`].
    Institution(usize),
    /// Index into [`SeedSet::clinicians`].
    Clinician(usize),
}

/// The supported side of a seeded pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedSupported {
    /// Index into [`SeedSet::institutions`].
    Institution(usize),
    /// A whole region.
    Region(RegionPath),
}

/// A pairing to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedPairing {
    /// Stable key, e.g. `jiangmen_villages:台山市/北陡镇/石蕉`.
    pub key: String,
    /// Supporting side.
    pub supporter: SeedSupporter,
    /// Supported side.
    pub supported: SeedSupported,
    /// Services covered.
    pub services: Services,
    /// First day.
    pub valid_from: NaiveDate,
    /// Last day, inclusive.
    pub valid_to: NaiveDate,
}
