//! "Who supports institution X for service S on date D": the designated supporter, then
//! the chain above it. A village station's supporter is a clinician or a team; their unit
//! is in turn supported (often as part of a whole county's health system) by an assisting
//! tertiary hospital (`000`, 任务分解表: 台山市卫生计生系统（江门市中心医院协助）).

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{Institution, Pairing, Service, Supported, Supporter};
use crate::rules::Error;
use crate::store::Store;

/// What a link of the chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A clinician.
    Clinician,
    /// A team.
    Team,
    /// An institution.
    Institution,
}

/// How a link came into the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkRole {
    /// Supports the previous link's institution through a pairing.
    Supporter,
    /// The unit the previous clinician or team belongs to.
    Unit,
}

/// One link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainLink {
    /// Through a pairing, or as a unit.
    pub role: LinkRole,
    /// Clinician, team or institution.
    pub kind: LinkKind,
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The institution it is, or belongs to.
    pub institution_id: i64,
    /// The pairing that makes it a supporter.
    pub pairing_id: Option<i64>,
}

/// The answer of the lookup.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SupporterChain {
    /// The supported institution asked about.
    pub institution_id: i64,
    /// The service.
    pub service: Service,
    /// The date.
    pub date: NaiveDate,
    /// The designated supporter first, then each link above it; empty when nobody
    /// supports the institution for this service on this date.
    pub chain: Vec<ChainLink>,
}

impl SupporterChain {
    /// The designated supporter: the one a request must be addressed to.
    pub fn designated(&self) -> Option<&ChainLink> {
        self.chain.first()
    }
}

/// How specific a pairing is for an institution: one naming it beats any region, and a
/// smaller region beats a larger one.
fn specificity(p: &Pairing) -> (bool, usize) {
    match &p.supported {
        Supported::Institution(_) => (true, 0),
        Supported::Region(r) => (false, r.depth()),
    }
}

/// Walks the chain from `institution_id` for `service` on `date`.
pub async fn supporter_chain(
    store: &Store,
    institution_id: i64,
    service: Service,
    date: NaiveDate,
) -> Result<SupporterChain, Error> {
    let mut chain = Vec::new();
    let mut current: Institution = store.institution(institution_id).await?.ok_or_else(|| {
        Error::field(
            "institution_id",
            format!("no institution has id {institution_id}"),
        )
    })?;
    let mut visited = HashSet::from([current.id]);
    loop {
        let mut candidates = Vec::new();
        for p in store
            .pairings_covering(current.id, current.region.as_str(), service, date)
            .await?
        {
            let (link, unit) = resolve(store, &p).await?;
            // A region pairing covers its own supporter when it lies in the region; an
            // institution does not support itself.
            if unit.id != current.id {
                candidates.push((p, link, unit));
            }
        }
        candidates.sort_by(|a, b| {
            specificity(&b.0)
                .cmp(&specificity(&a.0))
                .then(a.0.id.cmp(&b.0.id))
        });
        let Some((_, link, unit)) = candidates.into_iter().next() else {
            break;
        };
        let via_unit = link.kind != LinkKind::Institution;
        chain.push(link);
        if via_unit {
            chain.push(ChainLink {
                role: LinkRole::Unit,
                kind: LinkKind::Institution,
                id: unit.id,
                name: unit.name.clone(),
                institution_id: unit.id,
                pairing_id: None,
            });
        }
        if !visited.insert(unit.id) {
            break;
        }
        current = unit;
    }
    Ok(SupporterChain {
        institution_id,
        service,
        date,
        chain,
    })
}

/// The supporter of `p` as a link, and the institution it is or belongs to.
async fn resolve(store: &Store, p: &Pairing) -> Result<(ChainLink, Institution), Error> {
    let missing =
        |what: &str| Error::Internal(anyhow::anyhow!("pairing {} names a missing {what}", p.id));
    let (kind, id, name, unit_id) = match p.supporter {
        Supporter::Institution(id) => (LinkKind::Institution, id, None, id),
        Supporter::Clinician(id) => {
            let c = store
                .clinician(id)
                .await?
                .ok_or_else(|| missing("clinician"))?;
            (LinkKind::Clinician, id, Some(c.name), c.institution_id)
        }
        Supporter::Team(id) => {
            let t = store.team(id).await?.ok_or_else(|| missing("team"))?;
            (LinkKind::Team, id, Some(t.name), t.institution_id)
        }
    };
    let unit = store
        .institution(unit_id)
        .await?
        .ok_or_else(|| missing("institution"))?;
    let link = ChainLink {
        role: LinkRole::Supporter,
        kind,
        id,
        name: name.unwrap_or_else(|| unit.name.clone()),
        institution_id: unit.id,
        pairing_id: Some(p.id),
    };
    Ok((link, unit))
}
