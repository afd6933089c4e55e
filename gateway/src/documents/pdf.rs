//! The signed opinion as a PDF (ISO 32000), in Chinese, on A4: the request's facts, the
//! case summary, each signed version with its signer, the signature block and the
//! document hash. Set in one font with Chinese glyphs ([`super::Documents`]), embedded as a
//! subset by krilla, which also writes each glyph's text (a `ToUnicode` map) so the
//! document can be searched and its text copied. Times are China time (UTC+8).

use chrono::{DateTime, Utc};
use krilla::Document;
use krilla::geom::Point;
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, TextDirection};

use super::DocumentFont;
use super::opinion::OpinionDocument;
use crate::booking::{RequestKind, china};

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);
/// The margin on every side.
const MARGIN: f32 = 56.0;
/// Body text size.
const BODY: f32 = 10.5;

/// A paragraph to set: its text, size and indent, or centred.
struct Block {
    text: String,
    size: f32,
    indent: f32,
    space_before: f32,
    centred: bool,
}

impl Block {
    fn new(text: impl Into<String>, size: f32) -> Self {
        Self {
            text: text.into(),
            size,
            indent: 0.0,
            space_before: 0.0,
            centred: false,
        }
    }

    fn centred(mut self) -> Self {
        self.centred = true;
        self
    }

    fn indented(mut self, indent: f32) -> Self {
        self.indent = indent;
        self
    }

    fn after(mut self, space: f32) -> Self {
        self.space_before = space;
        self
    }
}

/// A set line: where and what.
struct Line {
    text: String,
    size: f32,
    x: f32,
    y: f32,
}

/// The document's title, by what was asked for.
pub fn title(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Consultation => "远程会诊意见书",
        RequestKind::ImagingRead => "远程医学影像诊断报告",
        RequestKind::PathologyRead => "远程病理诊断报告",
    }
}

fn kind_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Consultation => "远程会诊",
        RequestKind::ImagingRead => "远程医学影像诊断",
        RequestKind::PathologyRead => "远程病理诊断",
    }
}

/// A time as shown in China.
pub fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&china())
        .format("%Y-%m-%d %H:%M")
        .to_string()
}

/// What the document says, paragraph by paragraph.
fn blocks(doc: &OpinionDocument, hash: &str) -> Vec<Block> {
    let mut out = vec![Block::new(title(doc.kind), 18.0).centred()];
    let current = doc.version().map_or(0, |v| v.version);
    out.push(
        Block::new(
            format!("申请编号：{}　　意见版本：第 {current} 版", doc.request_id),
            BODY,
        )
        .after(6.0),
    );
    let heading = |text: &str| Block::new(text, 13.0).after(12.0);
    let fact = |label: &str, value: &str| Block::new(format!("{label}：{value}"), BODY);

    out.push(heading("申请信息"));
    out.push(fact("服务类型", kind_name(doc.kind)));
    out.push(fact("申请机构", &doc.requester_institution));
    out.push(fact("受邀机构", &doc.supporter_institution));
    if let Some(p) = &doc.patient {
        let sex = match p.sex.as_str() {
            "M" => "男",
            "F" => "女",
            other => other,
        };
        out.push(fact(
            "患者",
            &format!("{}　{sex}　出生日期 {}", p.name, p.birth_date),
        ));
    }
    out.push(fact("申请时间", &local(doc.created_at)));
    if let Some(at) = doc.submitted_at {
        out.push(fact("提交时间", &local(at)));
    }
    if let Some(at) = doc.scheduled_start {
        out.push(fact("会诊时间", &local(at)));
    }
    for (label, value) in [
        ("申请原因", &doc.reason),
        ("申请目的", &doc.purpose),
        ("申请专科", &doc.specialty),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            out.push(fact(label, value));
        }
    }

    out.push(heading("病例摘要"));
    let s = &doc.case_summary;
    for (label, value) in [
        ("主诉", &s.chief_complaint),
        ("现病史", &s.history),
        ("检查结果", &s.findings),
        ("咨询问题", &s.question),
    ] {
        if !value.is_empty() {
            out.push(fact(label, value));
        }
    }

    out.push(heading(match doc.kind {
        RequestKind::Consultation => "会诊意见",
        _ => "诊断意见",
    }));
    for v in &doc.versions {
        let amends = v
            .amends
            .map(|a| format!("（修订第 {a} 版）"))
            .unwrap_or_default();
        out.push(Block::new(format!("第 {} 版{amends}", v.version), 11.5).after(8.0));
        for paragraph in v.body.lines().filter(|l| !l.trim().is_empty()) {
            out.push(Block::new(paragraph.trim(), BODY).indented(12.0));
        }
        out.push(
            Block::new(
                format!(
                    "签署：{}　{}　{}　{}（北京时间）",
                    v.signer.name,
                    v.signer.title,
                    v.signer.institution,
                    local(v.signed_at)
                ),
                9.0,
            )
            .indented(12.0)
            .after(2.0),
        );
    }

    if let Some(v) = doc.version() {
        out.push(heading("签名"));
        out.push(fact("签署人", &v.signer.name));
        out.push(fact("职称", &v.signer.title));
        out.push(fact("机构", &v.signer.institution));
        out.push(fact(
            "签署时间",
            &format!("{}（北京时间）", local(v.signed_at)),
        ));
    }
    out.push(Block::new("文档摘要（SHA-256）：", 9.0).after(14.0));
    out.push(Block::new(hash, 9.0));
    out.push(
        Block::new(
            "摘要由申请信息、病例摘要及各版签署意见与签署人计算，用于核对本文件未被改动。",
            8.0,
        )
        .after(2.0),
    );
    out
}

/// How far character `c` advances the pen at `size`.
fn advance(face: &ttf_parser::Face<'_>, c: char, size: f32) -> f32 {
    let scale = size / f32::from(face.units_per_em());
    face.glyph_index(c)
        .and_then(|g| face.glyph_hor_advance(g))
        .map_or(size * 0.6, |a| f32::from(a) * scale)
}

/// Breaks `text` into lines no wider than `width` at `size`: anywhere between Chinese
/// characters, at a space inside Latin words, never before closing punctuation.
fn wrap(face: &ttf_parser::Face<'_>, text: &str, size: f32, width: f32) -> Vec<String> {
    let advance = |c: char| advance(face, c, size);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0.0;
    for c in text.chars() {
        let w = advance(c);
        let hangs = "，。、；：？！）》」』,.;:?!)".contains(c);
        if used + w > width && !line.is_empty() && !hangs {
            // Inside a Latin word: carry the word to the next line.
            let carried = if c.is_ascii_alphanumeric() {
                line.rfind(' ')
                    .filter(|at| line[at + 1..].chars().all(|c| c.is_ascii_graphic()))
                    .map(|at| line.split_off(at + 1))
            } else {
                None
            };
            lines.push(line.trim_end().to_owned());
            line = carried.unwrap_or_default();
            used = line.chars().map(advance).sum();
            if c == ' ' {
                continue;
            }
        }
        line.push(c);
        used += w;
    }
    lines.push(line);
    lines
}

/// The PDF of `doc`, whose hash is `hash`.
pub fn render(doc: &OpinionDocument, hash: &str, font: &DocumentFont) -> anyhow::Result<Vec<u8>> {
    let face = ttf_parser::Face::parse(&font.data, font.index)
        .map_err(|e| anyhow::anyhow!("the document font: {e}"))?;
    let width = PAGE.0 - 2.0 * MARGIN;
    let bottom = PAGE.1 - MARGIN - 20.0;
    let mut pages: Vec<Vec<Line>> = vec![Vec::new()];
    let mut y = MARGIN;
    for block in blocks(doc, hash) {
        y += block.space_before;
        for text in wrap(&face, &block.text, block.size, width - block.indent) {
            let height = block.size * 1.6;
            if y + height > bottom {
                pages.push(Vec::new());
                y = MARGIN;
            }
            y += height;
            let x = if block.centred {
                let used: f32 = text.chars().map(|c| advance(&face, c, block.size)).sum();
                MARGIN + ((width - used) / 2.0).max(0.0)
            } else {
                MARGIN + block.indent
            };
            pages.last_mut().expect("a page").push(Line {
                text,
                size: block.size,
                x,
                y,
            });
        }
    }

    let data: krilla::Data = font.data.clone().into();
    let pdf_font = Font::new(data, font.index)
        .ok_or_else(|| anyhow::anyhow!("krilla cannot read the document font"))?;
    let mut document = Document::new();
    let count = pages.len();
    let short_hash = &hash[..hash.len().min(16)];
    for (n, lines) in pages.into_iter().enumerate() {
        let settings = PageSettings::from_wh(PAGE.0, PAGE.1).expect("A4 is a page size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        let footer = format!(
            "申请编号 {}　第 {} 页 / 共 {count} 页　摘要 {short_hash}…",
            doc.request_id,
            n + 1
        );
        let footer = Line {
            text: footer,
            size: 8.0,
            x: MARGIN,
            y: PAGE.1 - MARGIN + 12.0,
        };
        for line in lines.iter().chain(std::iter::once(&footer)) {
            surface.draw_text(
                Point::from_xy(line.x, line.y),
                pdf_font.clone(),
                line.size,
                &line.text,
                false,
                TextDirection::Auto,
            );
        }
        surface.finish();
        page.finish();
    }
    let title = format!("{} · 申请编号 {}", title(doc.kind), doc.request_id);
    document.set_metadata(
        Metadata::new()
            .title(title)
            .language("zh-CN".into())
            .creator("duikou".into()),
    );
    document
        .finish()
        .map_err(|e| anyhow::anyhow!("writing the PDF: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_between_chinese_characters_and_at_spaces_in_latin_text() {
        let Ok(font) = super::super::Documents::new(None).font() else {
            eprintln!("no CJK font installed: skipped");
            return;
        };
        let face = ttf_parser::Face::parse(&font.data, font.index).unwrap();
        let lines = wrap(&face, &"头痛伴恶心，".repeat(20), 10.0, 100.0);
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| !l.starts_with('，')), "{lines:?}");
        let latin = wrap(
            &face,
            "amlodipine 5 mg once daily for hypertension",
            10.0,
            80.0,
        );
        assert!(
            latin.iter().all(|l| !l.ends_with("hyper")),
            "words are kept whole: {latin:?}"
        );
    }
}
