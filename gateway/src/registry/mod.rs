//! The registry's rules above the store: the supporter lookup that walks the pairing
//! chain, and the rules for creating, changing and ending pairings.

mod lookup;
mod pairings;

pub use lookup::{ChainLink, LinkKind, LinkRole, SupporterChain, supporter_chain};
pub use pairings::{
    PairingChange, PairingEnd, PairingInput, change_pairing, create_pairing, end_pairing,
};

use chrono::{FixedOffset, NaiveDate, Utc};

/// Today's date in China (UTC+8, no daylight saving): pairing periods are calendar days
/// there.
pub fn today_in_china() -> NaiveDate {
    let offset = FixedOffset::east_opt(8 * 3600).expect("a valid offset");
    Utc::now().with_timezone(&offset).date_naive()
}
