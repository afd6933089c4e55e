//! Attachments of a request (reports, images, the scanned consent): PDF, JPEG or PNG up
//! to `booking.max_attachment_bytes`, checked by their first bytes, stored durably under
//! their SHA-256 before they are recorded.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Access, RequestState, open_request};
use crate::domain::{Role, User};
use crate::rules::{Error, Rule};
use crate::store::Store;

/// A stored attachment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AttachmentInfo {
    /// Attachment id.
    pub id: i64,
    /// The request.
    pub request_id: i64,
    /// The name it was uploaded under.
    pub filename: String,
    /// `application/pdf`, `image/jpeg` or `image/png`.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex: the checksum that proves the bytes are unchanged.
    pub sha256: String,
    /// Uploaded.
    pub created_at: DateTime<Utc>,
}

/// The accepted types and the bytes their files start with.
const TYPES: [(&str, &[u8]); 3] = [
    ("application/pdf", b"%PDF-"),
    ("image/jpeg", b"\xFF\xD8\xFF"),
    ("image/png", b"\x89PNG\r\n\x1a\n"),
];

/// Checks the declared type against the bytes.
pub fn check_type(content_type: &str, bytes: &[u8]) -> Result<(), Error> {
    match TYPES.iter().find(|(t, _)| *t == content_type) {
        None => Err(Error::refused(
            Rule::UnsupportedAttachmentType,
            Some("content-type"),
            "attach PDF, JPEG or PNG files",
        )),
        Some((_, magic)) if !bytes.starts_with(magic) => Err(Error::refused(
            Rule::UnsupportedAttachment,
            Some("body"),
            format!("the file is not a {content_type}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Where the bytes of `sha256` live.
pub fn path_of(dir: &Path, sha256: &str) -> PathBuf {
    dir.join("attachments").join(sha256)
}

/// Writes `bytes` durably under their SHA-256 (temporary file, fsync, rename, fsync of
/// the directory) and returns the checksum.
pub fn store_bytes(dir: &Path, bytes: &[u8]) -> std::io::Result<String> {
    let sha = hex::encode(Sha256::digest(bytes));
    let target = path_of(dir, &sha);
    if target.exists() {
        return Ok(sha);
    }
    let folder = dir.join("attachments");
    std::fs::create_dir_all(&folder)?;
    let tmp = folder.join(format!(".{sha}.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &target)?;
    std::fs::File::open(&folder)?.sync_all()?;
    Ok(sha)
}

/// Refuses unless `by` may attach files to request `id` now: a clinician of the requesting
/// institution, while the request is open. A refusal is audited. Asked before the upload
/// is read, so that nobody else's bytes are taken in.
pub async fn may_attach(store: &Store, by: &User, id: i64) -> Result<(), Error> {
    let (r, side) = open_request(store, by, id, "read").await?;
    if side != Access::Requester || !by.is(Role::Clinician) {
        let why = "only the requesting institution's clinicians attach files";
        super::audit_request(store, by, "attach", Some(id), false, Some(why.into())).await?;
        return Err(Error::forbidden(why));
    }
    if matches!(
        r.state,
        RequestState::Closed | RequestState::Cancelled | RequestState::Declined
    ) {
        return Err(Error::refused(
            Rule::StepOutOfOrder,
            None,
            format!("the request is {}", r.state),
        ));
    }
    Ok(())
}

/// Attaches `bytes` of `content_type` under `filename` to request `id`, for `by`, whom
/// [`may_attach`] let through: the type is checked against the bytes, which are stored
/// durably under `data_dir` before they are recorded. The same bytes sent again are the
/// attachment already kept, under its first name.
pub async fn attach(
    store: &Store,
    data_dir: &Path,
    by: &User,
    id: i64,
    filename: String,
    content_type: String,
    bytes: Vec<u8>,
) -> Result<AttachmentInfo, Error> {
    check_type(&content_type, &bytes)?;
    let dir = data_dir.to_owned();
    let size = bytes.len() as i64;
    let sha256 = tokio::task::spawn_blocking(move || store_bytes(&dir, &bytes))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(anyhow::Error::from)?;
    let new = AttachmentInfo {
        id: 0,
        request_id: id,
        filename,
        content_type,
        size,
        sha256,
        created_at: store.now(),
    };
    let info = store.add_attachment(&new, by.id).await?;
    super::audit_request(
        store,
        by,
        "attach",
        Some(id),
        true,
        Some(info.sha256.clone()),
    )
    .await?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_checked_by_their_first_bytes() {
        assert!(check_type("application/pdf", b"%PDF-1.7 ...").is_ok());
        assert!(check_type("application/pdf", b"MZ\x90\x00").is_err());
        assert!(check_type("image/png", b"\x89PNG\r\n\x1a\n....").is_ok());
        assert!(check_type("application/zip", b"PK").is_err());
    }

    #[test]
    fn bytes_are_stored_under_their_checksum() {
        let dir = std::env::temp_dir().join(format!("duikou-att-{}", std::process::id()));
        let sha = store_bytes(&dir, b"%PDF-1.4 consent").unwrap();
        assert_eq!(sha, hex::encode(Sha256::digest(b"%PDF-1.4 consent")));
        assert_eq!(
            std::fs::read(path_of(&dir, &sha)).unwrap(),
            b"%PDF-1.4 consent"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
