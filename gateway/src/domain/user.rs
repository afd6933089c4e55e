//! Users, who act for an institution in one or more roles.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::named_enum;

named_enum! {
    /// What a user may do (DESIGN.md, "People and what they do").
    Role {
        /// Program administrator (health commission): institutions, rosters, pairings.
        Admin = "admin",
        /// Remote-medicine office: availability, rosters, schedules.
        Coordinator = "coordinator",
        /// Clinician: books and answers consultations.
        Clinician = "clinician",
        /// Radiologist: reads forwarded studies.
        Radiologist = "radiologist",
        /// Pathologist: answers pathology reads.
        Pathologist = "pathologist",
        /// Trainee: enrols in teaching sessions.
        Trainee = "trainee",
    }
}

/// A user's roles.
pub type Roles = super::NameSet<Role>;

/// A user account. The password hash never leaves the store layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct User {
    /// Account id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown to others.
    pub display_name: String,
    /// The institution the user acts for.
    pub institution_id: i64,
    /// The clinician record of this user, if they are one.
    pub clinician_id: Option<i64>,
    /// Roles.
    #[schema(value_type = Vec<Role>)]
    pub roles: Roles,
    /// Disabled accounts cannot log in.
    pub disabled: bool,
    /// The password was set by someone else (printed at the first start, generated or
    /// reset by an administrator or coordinator): the user must replace it before any
    /// endpoint but `/me`, `/me/password` and logout answers.
    pub must_change_password: bool,
    /// When the user last logged in.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Whether the user enrolled a second factor (TOTP): their logins ask for a code.
    pub two_factor: bool,
}

impl User {
    /// Whether the user holds `role`.
    pub fn is(&self, role: Role) -> bool {
        self.roles.contains(role)
    }

    /// Whether the user runs `institution_id`'s affairs in the program (its rosters,
    /// accounts, availability and imaging set-up): an administrator, or a coordinator of
    /// that institution.
    pub fn manages(&self, institution_id: i64) -> bool {
        self.is(Role::Admin)
            || (self.is(Role::Coordinator) && self.institution_id == institution_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        let roles = Roles::parse("clinician,admin").unwrap();
        assert!(
            roles.contains(Role::Admin)
                && roles.contains(Role::Clinician)
                && !roles.contains(Role::Trainee)
        );
        assert_eq!(roles.to_stored(), "admin,clinician");
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("admin,root").is_err());
    }
}
