//! The registry's rules above the store: institutions, clinicians and teams, accounts,
//! the supporter lookup that walks the pairing chain, and the rules for creating, changing
//! and ending pairings. Each function takes the caller and decides whether they may.

mod accounts;
mod clinicians;
mod institutions;
mod lookup;
mod pairings;
mod setup;

pub use accounts::{
    AccountInput, CreatedAccount, ResetPassword, account, accounts, check_username, create_account,
    reset_password, set_disabled,
};
pub use clinicians::{
    ClinicianInput, ClinicianSearch, CredentialsInput, TeamInput, clinician, clinicians,
    create_clinician, create_team, team, teams, update_credentials,
};
pub use institutions::{
    InstitutionInput, InstitutionSearch, WebhookInput, create_institution, institution,
    institutions, managed, set_webhook,
};
pub use lookup::{ChainLink, LinkKind, LinkRole, SupporterChain, supporter_chain};
pub use pairings::{
    PairingChange, PairingEnd, PairingInput, change_pairing, create_pairing, end_pairing,
};
pub use setup::{SetupItem, SetupStep, checklist};

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
