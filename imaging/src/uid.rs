//! Unique identifiers, DICOM PS3.5 §9.1 and value representation "UI": at most 64
//! characters, components of digits separated by dots, each without a leading zero
//! unless it is `0` itself. A value padded to even length with a NUL or a space is read
//! without its padding.

use std::fmt;

/// A well-formed UID (a SOP Instance, Series, Study or SOP Class UID), without padding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(String);

/// Why a string is not a UID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UidError {
    /// Empty, or only padding.
    #[error("a UID must not be empty")]
    Empty,
    /// More than 64 characters.
    #[error("a UID has at most 64 characters, this one has {0}")]
    TooLong(usize),
    /// Something other than digits and dots, an empty component, or a leading zero.
    #[error("a UID is digits separated by dots, without empty components or leading zeros")]
    Malformed,
}

impl Uid {
    /// Parses `s` as a UID, without its trailing NUL or space padding.
    pub fn parse(s: &str) -> Result<Self, UidError> {
        let s = s.trim_end_matches(['\0', ' ']);
        if s.is_empty() {
            return Err(UidError::Empty);
        }
        if s.len() > 64 {
            return Err(UidError::TooLong(s.len()));
        }
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        };
        if !s.split('.').all(component_ok) {
            return Err(UidError::Malformed);
        }
        Ok(Self(s.to_owned()))
    }

    /// The UID.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Uid {
    type Err = UidError;

    fn from_str(s: &str) -> Result<Self, UidError> {
        Self::parse(s)
    }
}

impl AsRef<str> for Uid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Uid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl fmt::Display for Uid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_not_part_of_the_uid() {
        assert_eq!(
            Uid::parse("1.2.840.10008.1.2.1\0").unwrap().as_str(),
            "1.2.840.10008.1.2.1"
        );
        assert_eq!(Uid::parse("1.2.3 ").unwrap(), *"1.2.3");
    }

    #[test]
    fn what_is_not_a_uid_is_refused_with_the_reason() {
        assert_eq!(Uid::parse(""), Err(UidError::Empty));
        assert_eq!(Uid::parse("\0"), Err(UidError::Empty));
        let long = format!("1.{}", "2".repeat(63));
        assert_eq!(Uid::parse(&long), Err(UidError::TooLong(65)));
        for bad in ["1..2", ".1.2", "1.2.", "1.02", "1.2a", "1.2-3", "１.２"] {
            assert_eq!(Uid::parse(bad), Err(UidError::Malformed), "{bad}");
        }
        assert!(Uid::parse("0.1.0").is_ok());
        assert!(Uid::parse(&format!("1.{}", "2".repeat(62))).is_ok());
    }
}
