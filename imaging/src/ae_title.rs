//! Application Entity titles, DICOM PS3.5 §6.2 value representation "AE": at most 16
//! characters of the default character repertoire, no backslash and no control characters;
//! leading and trailing spaces are not significant, and a title of only spaces is invalid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated AE title, stored without its insignificant leading and trailing spaces.
/// In configuration and JSON it is a string, checked as it is read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AeTitle(String);

/// Why a string is not an AE title.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AeTitleError {
    /// Empty, or only spaces.
    #[error("an AE title must not be empty")]
    Empty,
    /// More than 16 characters after trimming.
    #[error("an AE title has at most 16 characters, this one has {0}")]
    TooLong(usize),
    /// A backslash, control character or non-ASCII character.
    #[error("an AE title may not contain {0:?}")]
    BadCharacter(char),
}

impl AeTitle {
    /// Parses `s` as an AE title (PS3.5 §6.2).
    pub fn parse(s: &str) -> Result<Self, AeTitleError> {
        let trimmed = s.trim_matches(' ');
        if trimmed.is_empty() {
            return Err(AeTitleError::Empty);
        }
        if let Some(c) = trimmed
            .chars()
            .find(|c| *c == '\\' || !c.is_ascii() || c.is_ascii_control())
        {
            return Err(AeTitleError::BadCharacter(c));
        }
        if trimmed.len() > 16 {
            return Err(AeTitleError::TooLong(trimmed.len()));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The title without padding.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for AeTitle {
    type Err = AeTitleError;

    fn from_str(s: &str) -> Result<Self, AeTitleError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for AeTitle {
    type Error = AeTitleError;

    fn try_from(s: String) -> Result<Self, AeTitleError> {
        Self::parse(&s)
    }
}

impl From<AeTitle> for String {
    fn from(ae: AeTitle) -> Self {
        ae.0
    }
}

impl AsRef<str> for AeTitle {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

// The derived Hash and Eq are the inner String's, which agree with str's.
impl std::borrow::Borrow<str> for AeTitle {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for AeTitle {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for AeTitle {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for AeTitle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_is_not_significant() {
        assert_eq!(
            AeTitle::parse("  CT_TAISHAN ").unwrap().as_str(),
            "CT_TAISHAN"
        );
    }

    #[test]
    fn bad_titles_are_refused_with_the_reason() {
        assert_eq!(AeTitle::parse("   "), Err(AeTitleError::Empty));
        assert_eq!(
            AeTitle::parse("ABCDEFGHIJKLMNOPQ"),
            Err(AeTitleError::TooLong(17))
        );
        assert_eq!(
            AeTitle::parse("A\\B"),
            Err(AeTitleError::BadCharacter('\\'))
        );
        assert_eq!(
            AeTitle::parse("台山"),
            Err(AeTitleError::BadCharacter('台'))
        );
        assert_eq!(
            AeTitle::parse("A\nB"),
            Err(AeTitleError::BadCharacter('\n'))
        );
    }

    #[test]
    fn sixteen_characters_fit() {
        assert!(AeTitle::parse("ABCDEFGHIJKLMNOP").is_ok());
    }
}
