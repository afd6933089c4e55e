//! The registry's rules above the store: institutions, clinicians, teams, accounts,
//! the supporter lookup that walks the pairing chain, and the rules for creating, changing
//! and ending pairings. Each function takes the caller and decides whether they may.

mod accounts;
mod clinicians;
mod institutions;
mod lookup;
mod pairings;
mod setup;
mod teams;

pub use accounts::{
    AccountInput, CreatedAccount, ResetPassword, account, accounts, check_username, create_account,
    reset_password, reset_two_factor, set_disabled,
};
pub use clinicians::{
    ClinicianChange, ClinicianInput, ClinicianRecord, ClinicianSearch, clinician, clinician_record,
    clinicians, create_clinician, update_clinician,
};
pub use institutions::{
    InstitutionChange, InstitutionInput, InstitutionSearch, WebhookInput, create_institution,
    institution, institutions, managed, set_webhook, update_institution,
};
pub use lookup::{ChainLink, LinkKind, LinkRole, SupporterChain, supporter_chain};
pub use pairings::{
    PairingChange, PairingEnd, PairingInput, TargetInput, change_pairing, create_pairing,
    end_pairing, set_training_target, training_target, training_targets,
};
pub use setup::{SetupItem, SetupStep, checklist};
pub use teams::{TeamChange, TeamInput, create_team, team, teams, update_team};

use chrono::{FixedOffset, NaiveDate, Utc};

/// Today's date in China (UTC+8, no daylight saving): pairing periods are calendar days
/// there.
pub fn today_in_china() -> NaiveDate {
    let offset = FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    Utc::now().with_timezone(&offset).date_naive()
}

/// Refuses unless `by` is an administrator, who alone may `what`.
fn require_admin(by: &crate::domain::User, what: &str) -> Result<(), crate::rules::Error> {
    if by.is(crate::domain::Role::Admin) {
        Ok(())
    } else {
        Err(crate::rules::Error::forbidden(format!(
            "only an administrator may {what}"
        )))
    }
}

/// Refuses unless `by` manages `institution_id` (an administrator, or its coordinator),
/// who alone may `what`.
fn require_manager(
    by: &crate::domain::User,
    institution_id: i64,
    what: &str,
) -> Result<(), crate::rules::Error> {
    if by.manages(institution_id) {
        Ok(())
    } else {
        Err(crate::rules::Error::forbidden(format!(
            "only an administrator or the unit's coordinator may {what}"
        )))
    }
}

/// A name or number registered already, blamed on `field` so that a form shows the
/// refusal beside it; any other failure of the store as it is.
fn registered(field: &'static str) -> impl FnOnce(crate::store::StoreError) -> crate::rules::Error {
    move |e| match e {
        crate::store::StoreError::Conflict(what) => crate::rules::Error::refused(
            crate::rules::Rule::AlreadyRegistered,
            Some(field),
            format!("{what} is registered already"),
        ),
        e => e.into(),
    }
}
