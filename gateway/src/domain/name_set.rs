//! Non-empty sets of named values (a user's roles, a pairing's services), stored as
//! comma-separated names in a fixed order so that equal sets store equally.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::UnknownName;

/// A fieldless enum with a stored name for each value (see `named_enum!`).
pub trait Named: Copy + Ord + FromStr<Err = UnknownName> + 'static {
    /// Every value.
    const ALL: &'static [Self];
    /// The stored name.
    fn name(self) -> &'static str;
}

/// A non-empty set of `T`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<T>", into = "Vec<T>")]
#[serde(bound(serialize = "T: Serialize", deserialize = "T: Deserialize<'de>"))]
pub struct NameSet<T: Named>(BTreeSet<T>);

impl<T: Named> NameSet<T> {
    /// Builds a set; at least one value is required.
    pub fn new(values: impl IntoIterator<Item = T>) -> Option<Self> {
        let set: BTreeSet<T> = values.into_iter().collect();
        (!set.is_empty()).then_some(Self(set))
    }

    /// Every value of `T`.
    pub fn all() -> Self {
        Self(T::ALL.iter().copied().collect())
    }

    /// Parses the stored form `a,b`.
    pub fn parse(stored: &str) -> Result<Self, UnknownName> {
        let set = stored
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<BTreeSet<T>, _>>()?;
        Self::new(set).ok_or(UnknownName {
            value: stored.to_owned(),
            expected: &["at least one name"],
        })
    }

    /// Whether `value` is in the set.
    pub fn contains(&self, value: T) -> bool {
        self.0.contains(&value)
    }

    /// The stored form.
    pub fn to_stored(&self) -> String {
        self.0
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The values in order.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        self.0.iter().copied()
    }
}

impl<T: Named> TryFrom<Vec<T>> for NameSet<T> {
    type Error = &'static str;
    fn try_from(v: Vec<T>) -> Result<Self, Self::Error> {
        Self::new(v).ok_or("at least one value is required")
    }
}

impl<T: Named> From<NameSet<T>> for Vec<T> {
    fn from(s: NameSet<T>) -> Self {
        s.0.into_iter().collect()
    }
}
