//! The registry's nouns, parsed at the edge and valid by construction: institutions,
//! clinicians and their title ranks, teams, pairings and the services they cover, users
//! and their roles. Nothing here touches the database or the network.

mod clinician;
mod institution;
mod name_set;
mod pairing;
mod text;
mod user;

pub use clinician::{Clinician, QualificationGap, Sex, TitleRank};
pub use institution::{HUANCUI, Institution, Kind, Level, RegionPath};
pub use name_set::{NameSet, Named};
pub use pairing::{
    Pairing, PairingStatus, PairingVersion, Service, Services, Standing, Supported, Supporter,
    TargetSource, Team, TrainingTarget,
};
pub use text::{name_query, normalize_name};
pub use user::{Role, Roles, User};

/// A value that is not one of a fixed set of names, with the names it could have been.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not one of: {}", expected.join(", "))]
pub struct UnknownName {
    /// What was given.
    pub value: String,
    /// What is accepted.
    pub expected: &'static [&'static str],
}

/// Declares a fieldless enum stored and sent as snake_case text, with its parser.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] #[schema(rename = $text)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The stored and transmitted name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl crate::domain::Named for $name {
            const ALL: &'static [$name] = $name::ALL;
            fn name(self) -> &'static str {
                self.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::domain::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(crate::domain::UnknownName { value: s.to_owned(), expected: Self::NAMES }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        /// Read from a text column (`#[sqlx(try_from = "String")]`).
        impl TryFrom<String> for $name {
            type Error = crate::domain::UnknownName;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    };
}
pub(crate) use named_enum;

#[cfg(test)]
mod tests {
    use super::Named;

    /// The names the OpenAPI document lists for `T`.
    fn documented<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("a schema serialises");
        serde_json::from_value(schema["enum"].clone()).expect("an enum lists its values")
    }

    fn spoken<T: Named>() -> Vec<String> {
        T::ALL.iter().map(|v| v.name().to_owned()).collect()
    }

    #[test]
    fn the_api_document_lists_the_names_the_server_speaks() {
        use crate::booking::{EnrolmentStatus, RequestKind, RequestState, Urgency};
        use crate::domain::{
            Kind, Level, PairingStatus, QualificationGap, Role, Service, Sex, Standing, TitleRank,
        };
        use crate::store::{ForwardState, Outcome};
        macro_rules! same {
            ($($t:ty),+) => {$(
                assert_eq!(documented::<$t>(), spoken::<$t>(), stringify!($t));
            )+};
        }
        same!(
            Service,
            Role,
            Sex,
            Kind,
            Level,
            TitleRank,
            QualificationGap,
            PairingStatus,
            Standing,
            RequestKind,
            RequestState,
            Urgency,
            EnrolmentStatus,
            ForwardState,
            Outcome
        );
    }
}
