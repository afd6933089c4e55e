//! Institutions: administrators add them; an institution's coordinators (or an
//! administrator) set where it is notified.

use serde::Deserialize;
use utoipa::ToSchema;

use duikou_imaging::outbound::{Policy, Refused};

use super::require_admin;
use crate::domain::{Institution, Kind, Level, RegionPath, User, name_query, normalize_name};
use crate::rules::Error;
use crate::store::{InstitutionFilter, NewInstitution, Store};

/// A new institution.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstitutionInput {
    /// Name; stray spaces are removed.
    pub name: String,
    /// Tier.
    pub level: Level,
    /// Kind.
    pub kind: Kind,
    /// Region path.
    #[schema(value_type = String)]
    pub region: RegionPath,
    /// 偏远 / 老区村.
    #[serde(default)]
    pub remote: bool,
}

/// Where an institution receives notifications.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// An `https://` (or `http://`, inside a hospital network) URL.
    pub url: String,
    /// The shared secret for `X-Duikou-Signature`, at least 16 characters.
    pub secret: String,
}

/// What a search for institutions asks: the page is the caller's to choose.
#[derive(Debug, Default)]
pub struct InstitutionSearch {
    /// In this region or below it.
    pub region: Option<RegionPath>,
    /// Tier.
    pub level: Option<Level>,
    /// Kind.
    pub kind: Option<Kind>,
    /// Remote only, or non-remote only.
    pub remote: Option<bool>,
    /// Part of the name.
    pub name: Option<String>,
}

/// Institutions matching `search`, a page of `limit` after `offset`. Any logged-in user.
pub async fn institutions(
    store: &Store,
    search: InstitutionSearch,
    limit: i64,
    offset: i64,
) -> Result<Vec<Institution>, Error> {
    let filter = InstitutionFilter {
        region: search.region.map(String::from),
        level: search.level.map(|l| l.as_str().to_owned()),
        kind: search.kind.map(|k| k.as_str().to_owned()),
        remote: search.remote,
        name: name_query(search.name),
        limit,
        offset,
    };
    Ok(store.institutions(&filter).await?)
}

/// One institution. Any logged-in user.
pub async fn institution(store: &Store, id: i64) -> Result<Institution, Error> {
    store
        .institution(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("institution {id}")))
}

/// Refuses unless `by` manages institution `id` (its coordinators or an administrator,
/// who may `what`) and it exists.
pub async fn managed(store: &Store, by: &User, id: i64, what: &str) -> Result<Institution, Error> {
    if !by.manages(id) {
        return Err(Error::forbidden(format!(
            "the institution's coordinators or an administrator {what}"
        )));
    }
    institution(store, id).await
}

/// Adds an institution. Administrators only.
pub async fn create_institution(
    store: &Store,
    by: &User,
    input: InstitutionInput,
) -> Result<Institution, Error> {
    require_admin(by, "add institutions")?;
    let name = normalize_name(&input.name);
    if name.is_empty() {
        return Err(Error::field("name", "a name is required"));
    }
    let new = NewInstitution {
        name,
        level: input.level.as_str().into(),
        kind: input.kind.as_str().into(),
        region: input.region.into(),
        remote: input.remote,
    };
    Ok(store.create_institution(&new).await?)
}

/// Sets institution `id`'s webhook: its coordinators or an administrator. Where the URL
/// leads is checked against `policy` now, to tell the coordinator, and again at every call.
pub async fn set_webhook(
    store: &Store,
    policy: &Policy,
    by: &User,
    id: i64,
    input: WebhookInput,
) -> Result<(), Error> {
    managed(store, by, id, "set its webhook").await?;
    let url = input.url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.len() > 2000 {
        return Err(Error::field("url", "an http:// or https:// URL"));
    }
    crate::notify::check_url(url, policy).map_err(|e| Error::field("url", e))?;
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if let Err(e @ Refused::Address(_)) = policy.resolve(&host, 0).await {
        return Err(Error::field("url", e.to_string()));
    }
    if input.secret.chars().count() < 16 {
        return Err(Error::field("secret", "at least 16 characters"));
    }
    store.set_webhook(id, url, &input.secret).await?;
    Ok(())
}
