//! The consultant's opinion: drafted, signed, amended as new versions, and read by both
//! sides.

use crate::booking::request::{Opinion, OpinionStatus, RequestKind, RequestState};
use crate::domain::User;
use crate::rules::Error;
use crate::store::{OpinionChange, RequestUpdate, Store};

use super::steps::out_of_order;
use super::{Access, access, audit, load};

/// Writes the consultant's draft opinion (a first opinion, or an amendment of the latest
/// signed one).
pub async fn save_opinion(
    store: &Store,
    caller: &User,
    id: i64,
    body: String,
) -> Result<Vec<Opinion>, Error> {
    let r = load(store, id).await?;
    access(store, caller, &r, "write_opinion").await?;
    if caller.clinician_id.is_none() || caller.clinician_id != r.consultant_id {
        audit(
            store,
            caller,
            "write_opinion",
            Some(id),
            false,
            Some("not the assigned consultant".into()),
        )
        .await?;
        return Err(Error::forbidden(
            "only the assigned consultant writes the opinion",
        ));
    }
    use RequestState::*;
    let writable = match r.state {
        InSession | OpinionSigned | Acknowledged => true,
        Accepted | Scheduled => r.kind != RequestKind::Consultation,
        _ => false,
    };
    if !writable {
        return Err(out_of_order(format!(
            "no opinion is written while the request is {}",
            r.state
        )));
    }
    if body.trim().chars().count() < 10 {
        return Err(Error::field(
            "body",
            "an opinion says something: at least 10 characters",
        ));
    }
    let amends_id = store
        .opinions(id)
        .await?
        .into_iter()
        .rev()
        .find(|o| o.status == OpinionStatus::Signed)
        .map(|o| o.id);
    let change = OpinionChange::Draft {
        consultant_id: r.consultant_id.unwrap_or_default(),
        author: caller.id,
        body,
        amends_id,
    };
    store
        .update_request(
            id,
            r.version,
            &RequestUpdate {
                at: store.now(),
                ..Default::default()
            },
            None,
            Some(&change),
        )
        .await?;
    audit(store, caller, "write_opinion", Some(id), true, None).await?;
    opinions(store, caller, id).await
}

/// The opinions the caller may see: the requester never sees drafts.
pub async fn opinions(store: &Store, caller: &User, id: i64) -> Result<Vec<Opinion>, Error> {
    let r = load(store, id).await?;
    let side = access(store, caller, &r, "read_opinions").await?;
    audit(store, caller, "read_opinions", Some(id), true, None).await?;
    let all = store.opinions(id).await?;
    Ok(match side {
        Access::Requester => all
            .into_iter()
            .filter(|o| o.status == OpinionStatus::Signed)
            .collect(),
        Access::Supporter => all,
    })
}
