//! Remote ward rounds (远程查房, `004`): a supporting team and a supported hospital's
//! ward meet on a recurring schedule; each round has its list of patients to see and a
//! note per patient.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

/// One round.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WardRound {
    /// Round id.
    pub id: i64,
    /// The supporting team.
    pub team_id: i64,
    /// The supported hospital.
    pub supported_institution_id: i64,
    /// The ward, e.g. 内科病区.
    pub ward: String,
    /// Start.
    pub starts_at: DateTime<Utc>,
    /// End.
    pub ends_at: DateTime<Utc>,
    /// The first round of its weekly series.
    pub series_id: Option<i64>,
    /// The ward's own team, when named: only its members join the round's room from the
    /// ward's side. Unnamed: the clinicians of the supported hospital.
    pub ward_team_id: Option<i64>,
}

/// A patient to see on a round.
#[derive(Clone, Serialize, ToSchema)]
pub struct RoundPatient {
    /// Entry id.
    pub id: i64,
    /// The round.
    pub round_id: i64,
    /// Bed.
    pub bed: String,
    /// The patient's name: visible to the two institutions only.
    pub patient_name: String,
    /// What the ward asks about this patient.
    pub question: String,
    /// The team's note.
    pub note: Option<String>,
    /// Who wrote it.
    pub note_by: Option<i64>,
    /// When.
    pub note_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for RoundPatient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RoundPatient {{ id: {}, round_id: {}, .. }}",
            self.id, self.round_id
        )
    }
}
