//! The documents duikou makes for the records: the signed opinion of a request as a PDF
//! the requesting county files (national rules: both sides keep the records, the opinion
//! signed by the consultant).
//!
//! ## Layout
//! - [`opinion`]: what the document says ([`OpinionDocument`]: the request's facts, the
//!   case summary, the signed versions with their signers) and its hash.
//! - [`pdf`]: the PDF of it, set in a font with Chinese glyphs, embedded as a subset.
//! - here: finding and loading that font (`[documents] font`, else Debian's CJK fonts),
//!   and the bound on documents made at once.

pub mod opinion;
pub mod pdf;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

pub use opinion::{OpinionDocument, PatientFacts, SignedVersion};

/// Where Debian puts fonts with Chinese glyphs, in the order they are tried when
/// `[documents] font` is unset: `fonts-noto-cjk` (OpenType collections with CFF outlines),
/// then `fonts-wqy-microhei` and `fonts-wqy-zenhei` (TrueType collections).
pub const FONT_SEARCH: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
];

/// The Debian package to install when no font is found.
pub const FONT_PACKAGE: &str = "fonts-noto-cjk";

/// A loaded font: the file's bytes and the face of a collection to use.
#[derive(Clone)]
pub struct DocumentFont {
    /// The whole file.
    pub data: Arc<Vec<u8>>,
    /// The face: in a CJK collection, the Simplified Chinese one.
    pub index: u32,
}

impl std::fmt::Debug for DocumentFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DocumentFont({} bytes, face {})",
            self.data.len(),
            self.index
        )
    }
}

/// No font with Chinese glyphs was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "no font with Chinese glyphs for the PDF: install Debian's {FONT_PACKAGE} or set [documents] font ({0})"
)]
pub struct NoFont(pub String);

/// What making documents needs: the font, loaded once on first use and kept (a font that
/// is missing is looked for again on the next use, so installing the package needs no
/// restart), and a bound on the documents made at once, one per processor: a PDF is
/// computed on the blocking pool, and callers choose how many they ask for.
#[derive(Debug)]
pub struct Documents {
    configured: Option<PathBuf>,
    loaded: OnceLock<DocumentFont>,
    making: tokio::sync::Semaphore,
}

impl Documents {
    /// With the font at `configured`, or the first of [`FONT_SEARCH`] present.
    pub fn new(configured: Option<PathBuf>) -> Self {
        let processors = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            configured,
            loaded: OnceLock::new(),
            making: tokio::sync::Semaphore::new(processors),
        }
    }

    /// A turn to make a document; waits while as many are being made as there are
    /// processors.
    pub async fn turn(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.making
            .acquire()
            .await
            .expect("the semaphore is never closed")
    }

    /// The font, loading it on first use (blocking: a CJK collection is some 20 MB).
    pub fn font(&self) -> Result<DocumentFont, NoFont> {
        if let Some(font) = self.loaded.get() {
            return Ok(font.clone());
        }
        let candidates: Vec<&Path> = match &self.configured {
            Some(path) => vec![path.as_path()],
            None => FONT_SEARCH.iter().map(Path::new).collect(),
        };
        let mut tried = Vec::new();
        for path in candidates {
            match load(path) {
                Ok(font) => return Ok(self.loaded.get_or_init(|| font).clone()),
                Err(why) => tried.push(format!("{}: {why}", path.display())),
            }
        }
        Err(NoFont(tried.join("; ")))
    }
}

/// Reads the font at `path` and picks its face: in a collection, the first whose name
/// says Simplified Chinese (` SC`, as in Noto Sans CJK SC), else the first.
fn load(path: &Path) -> Result<DocumentFont, String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    let faces = ttf_parser::fonts_in_collection(&data).unwrap_or(1);
    let named_sc = |i: u32| {
        ttf_parser::Face::parse(&data, i).is_ok_and(|face| {
            face.names().into_iter().any(|n| {
                n.name_id == ttf_parser::name_id::FULL_NAME
                    && n.to_string().is_some_and(|s| s.contains(" SC"))
            })
        })
    };
    let index = (0..faces).find(|i| named_sc(*i)).unwrap_or(0);
    let face = ttf_parser::Face::parse(&data, index).map_err(|e| e.to_string())?;
    if face.glyph_index('中').is_none() {
        return Err("has no Chinese glyphs".into());
    }
    Ok(DocumentFont {
        data: Arc::new(data),
        index,
    })
}
