//! An institution's imaging set-up, kept by its coordinators or an administrator: the
//! destination its studies are delivered to when it reads for others, and the DICOM nodes
//! (modalities, PACS) that may send to the relay for it.

use serde::Deserialize;
use utoipa::ToSchema;

use duikou_imaging::AeTitle;
use duikou_imaging::outbound::{Policy, Refused};

use crate::domain::User;
use crate::registry::managed;
use crate::rules::Error;
use crate::store::{DicomNode, ImagingDestination, Store};

/// An institution's DICOM destination.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DestinationInput {
    /// Called AE title of its storage SCP.
    pub ae_title: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: i32,
    /// Whether it speaks DICOM over TLS.
    #[serde(default)]
    pub tls: bool,
}

/// A DICOM node to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DicomNodeInput {
    /// The calling AE title of the modality or PACS (1 to 16 characters).
    pub ae_title: String,
    /// The IP address it calls from, or `*` for any.
    pub host: String,
    /// What it is ("CT室 GE Revolution"), up to 100 characters.
    #[serde(default)]
    pub description: Option<String>,
}

fn ae_title(s: &str) -> Result<AeTitle, Error> {
    AeTitle::parse(s).map_err(|e| Error::field("ae_title", e.to_string()))
}

/// Sets where studies read by institution `id` are delivered. Where it leads is checked
/// against `policy` now, to tell the coordinator, and again at every association; a name
/// that does not resolve yet is taken (hospital DNS may come later).
pub async fn set_destination(
    store: &Store,
    policy: &Policy,
    by: &User,
    id: i64,
    input: DestinationInput,
) -> Result<ImagingDestination, Error> {
    managed(store, by, id, "set its DICOM destination").await?;
    let ae = ae_title(&input.ae_title)?;
    let host = input.host.trim();
    if host.is_empty() || host.len() > 253 || host.contains(char::is_whitespace) {
        return Err(Error::field("host", "a host name or address"));
    }
    let port = u16::try_from(input.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::field("port", "a port from 1 to 65535"))?;
    match policy.resolve(host, port).await {
        Ok(_) | Err(Refused::Unresolved(_)) => {}
        Err(e) => return Err(Error::field("host", e.to_string())),
    }
    let d = ImagingDestination {
        institution_id: id,
        ae_title: ae,
        host: host.to_owned(),
        port: input.port,
        tls: input.tls,
    };
    store.set_destination(&d).await?;
    Ok(d)
}

/// Institution `id`'s DICOM destination, for its coordinators or an administrator.
pub async fn destination(store: &Store, by: &User, id: i64) -> Result<ImagingDestination, Error> {
    if !by.manages(id) {
        return Err(Error::forbidden(
            "the institution's coordinators or an administrator see its DICOM destination",
        ));
    }
    store
        .destination(id)
        .await?
        .ok_or_else(|| Error::NotFound(format!("a DICOM destination of institution {id}")))
}

/// A change to a registered DICOM node: what is given is replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DicomNodeChange {
    /// The calling AE title of the modality or PACS (1 to 16 characters).
    pub ae_title: Option<String>,
    /// The IP address it calls from, or `*` for any.
    pub host: Option<String>,
    /// What it is, up to 100 characters; empty to clear it.
    pub description: Option<String>,
}

/// A node's description: trimmed, at most 100 characters.
fn node_description(text: &str) -> Result<String, Error> {
    let text = text.trim();
    if text.chars().count() > 100 {
        return Err(Error::field("description", "at most 100 characters"));
    }
    Ok(text.to_owned())
}

/// The address a node calls from: an IP address, or `*` for any.
fn node_host(host: &str) -> Result<String, Error> {
    let host = host.trim();
    if host != "*" && host.parse::<std::net::IpAddr>().is_err() {
        return Err(Error::field("host", "an IP address, or * for any"));
    }
    Ok(host.to_owned())
}

/// Registers a modality or PACS that may send studies to the relay for institution `id`.
pub async fn add_dicom_node(
    store: &Store,
    by: &User,
    id: i64,
    input: DicomNodeInput,
) -> Result<DicomNode, Error> {
    managed(store, by, id, "register its DICOM nodes").await?;
    let ae = ae_title(&input.ae_title)?;
    let host = node_host(&input.host)?;
    let description = node_description(input.description.as_deref().unwrap_or_default())?;
    Ok(store.add_dicom_node(id, &ae, &host, &description).await?)
}

/// Changes node `node` of institution `id`: its AE title, the address it calls from, its
/// description. The storage SCP reads the nodes at every association, so the next one is
/// answered by the change.
pub async fn change_dicom_node(
    store: &Store,
    by: &User,
    id: i64,
    node: i64,
    change: DicomNodeChange,
) -> Result<DicomNode, Error> {
    managed(store, by, id, "change its DICOM nodes").await?;
    let current = registered_node(store, id, node).await?;
    let ae = match &change.ae_title {
        Some(ae) => ae_title(ae)?,
        None => current.ae_title,
    };
    let host = match &change.host {
        Some(host) => node_host(host)?,
        None => current.host,
    };
    let description = match &change.description {
        Some(text) => node_description(text)?,
        None => current.description,
    };
    store
        .change_dicom_node(id, node, &ae, &host, &description)
        .await?
        .ok_or_else(|| not_registered(id, node))
}

/// Removes node `node` of institution `id`: from its next association on, the storage
/// SCP refuses its AE title (what it sent before stays).
pub async fn remove_dicom_node(store: &Store, by: &User, id: i64, node: i64) -> Result<(), Error> {
    managed(store, by, id, "remove its DICOM nodes").await?;
    if !store.remove_dicom_node(id, node).await? {
        return Err(not_registered(id, node));
    }
    Ok(())
}

async fn registered_node(store: &Store, id: i64, node: i64) -> Result<DicomNode, Error> {
    store
        .dicom_nodes(Some(id))
        .await?
        .into_iter()
        .find(|n| n.id == node)
        .ok_or_else(|| not_registered(id, node))
}

fn not_registered(id: i64, node: i64) -> Error {
    Error::NotFound(format!("DICOM node {node} of institution {id}"))
}

/// Institution `id`'s registered DICOM nodes.
pub async fn dicom_nodes(store: &Store, by: &User, id: i64) -> Result<Vec<DicomNode>, Error> {
    managed(store, by, id, "see its DICOM nodes").await?;
    Ok(store.dicom_nodes(Some(id)).await?)
}
