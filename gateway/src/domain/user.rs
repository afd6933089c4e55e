//! Users, who act for an institution in one or more roles.

use std::collections::BTreeSet;

use serde::Serialize;
use utoipa::ToSchema;

use super::{UnknownName, named_enum};

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
        /// Trainee: enrols in teaching sessions.
        Trainee = "trainee",
    }
}

/// A non-empty set of roles, stored as comma-separated names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    /// Builds a role set; at least one role is required.
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Option<Self> {
        let set: BTreeSet<Role> = roles.into_iter().collect();
        (!set.is_empty()).then_some(Self(set))
    }

    /// Parses the stored form `admin,clinician`.
    pub fn parse(stored: &str) -> Result<Self, UnknownName> {
        let set = stored
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<BTreeSet<Role>, _>>()?;
        Self::new(set).ok_or(UnknownName {
            value: stored.to_owned(),
            expected: &["at least one role"],
        })
    }

    /// Whether the set holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The roles in order.
    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}

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
}

impl User {
    /// Whether the user holds `role`.
    pub fn is(&self, role: Role) -> bool {
        self.roles.has(role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_their_stored_form() {
        let roles = Roles::parse("clinician,admin").unwrap();
        assert!(roles.has(Role::Admin) && roles.has(Role::Clinician) && !roles.has(Role::Trainee));
        assert_eq!(roles.to_stored(), "admin,clinician");
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("admin,root").is_err());
    }
}
