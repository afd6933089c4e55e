//! Institutions: hospitals, health centres, village stations and health bureaus.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{named_enum, normalize_name};

named_enum! {
    /// Where an institution stands in the three-tier system (DESIGN.md, "Domain").
    Level {
        /// 三级: city and provincial hospitals that assist county systems.
        Tertiary = "tertiary",
        /// 二级: district and city hospitals below the tertiary level.
        Secondary = "secondary",
        /// County-level hospitals, CDCs and maternal-and-child centres.
        County = "county",
        /// Township health centres and community health service centres.
        Township = "township",
        /// Village stations (村卫生站 / 村卫生室).
        VillageStation = "village_station",
        /// Health bureaus and commissions that run the program.
        Administration = "administration",
    }
}

impl Level {
    /// The institution's tier in the chain of support: tertiary hospitals support county
    /// hospitals (`004`: 组织全国三级医院对口帮扶贫困县县级医院), and city, county and town
    /// units support village stations (`000`). Secondary and county-level hospitals share
    /// the middle tier; a health bureau runs the program and has no tier.
    pub fn tier(self) -> Option<u8> {
        match self {
            Self::Tertiary => Some(3),
            Self::Secondary | Self::County => Some(2),
            Self::Township => Some(1),
            Self::VillageStation => Some(0),
            Self::Administration => None,
        }
    }
}

/// The district of the Huancui document (`003`): its units' expert teams have 5-10
/// members and visit their villages at least every two months.
pub const HUANCUI: &str = "山东省/威海市/环翠区";

named_enum! {
    /// What kind of institution it is; the national plan pairs TCM with TCM (`004`).
    Kind {
        /// General hospital.
        General = "general",
        /// Traditional Chinese medicine hospital.
        Tcm = "tcm",
        /// Maternal-and-child health centre (妇幼保健).
        MaternalChild = "maternal_child",
        /// Centre for disease control (疾控中心).
        Cdc = "cdc",
        /// Township or community health centre (卫生院, 社区卫生服务中心).
        HealthCentre = "health_centre",
        /// Village station.
        VillageStation = "village_station",
        /// Specialty hospital (e.g. stomatology).
        Specialty = "specialty",
        /// Health bureau or commission.
        Administration = "administration",
    }
}

/// A region path such as `广东省/江门市/台山市/北陡镇`: province › city › county or district ›
/// town › village, each segment a normalised name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct RegionPath(String);

impl TryFrom<String> for RegionPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::parse(&s)
    }
}

impl From<RegionPath> for String {
    fn from(r: RegionPath) -> String {
        r.0
    }
}

impl RegionPath {
    /// Parses `a/b/c`; empty segments are refused and each segment is normalised.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let segments: Vec<String> = raw.split('/').map(normalize_name).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!(
                "{raw:?} is not a region path like 广东省/江门市/台山市 (empty segment)"
            ));
        }
        Ok(Self(segments.join("/")))
    }

    /// The path with one more segment.
    pub fn child(&self, segment: &str) -> Result<Self, String> {
        Self::parse(&format!("{}/{segment}", self.0))
    }

    /// Whether `other` is this region or lies inside it.
    pub fn contains(&self, other: &RegionPath) -> bool {
        other.0 == self.0
            || (other.0.starts_with(&self.0) && other.0.as_bytes().get(self.0.len()) == Some(&b'/'))
    }

    /// The number of segments; a longer path is a more specific region.
    pub fn depth(&self) -> usize {
        self.0.split('/').count()
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RegionPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An institution of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Institution {
    /// Registry id.
    pub id: i64,
    /// Canonical name.
    pub name: String,
    /// Tier.
    pub level: Level,
    /// Kind.
    pub kind: Kind,
    /// Region path.
    #[schema(value_type = String, example = "广东省/江门市/台山市")]
    pub region: RegionPath,
    /// 偏远 / 老区村: served first when requests compete (`000`).
    pub remote: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_contains_its_towns_but_not_its_namesakes() {
        let taishan = RegionPath::parse("广东省/江门市/台山市").unwrap();
        assert!(taishan.contains(&RegionPath::parse("广东省/江门市/台山市/北陡镇").unwrap()));
        assert!(taishan.contains(&taishan));
        assert!(!taishan.contains(&RegionPath::parse("广东省/江门市/台山市外").unwrap()));
        assert!(!taishan.contains(&RegionPath::parse("广东省/江门市").unwrap()));
    }

    #[test]
    fn region_segments_are_normalised_and_never_empty() {
        assert_eq!(
            RegionPath::parse("广东省/ 江门市 /恩平市/良西镇/龙 山")
                .unwrap()
                .as_str(),
            "广东省/江门市/恩平市/良西镇/龙山"
        );
        assert!(RegionPath::parse("广东省//台山市").is_err());
        assert!(RegionPath::parse("").is_err());
    }

    #[test]
    fn tertiary_stands_above_county_and_county_above_township_and_village() {
        let tier = |l: Level| l.tier().unwrap();
        assert!(tier(Level::Tertiary) > tier(Level::County));
        assert_eq!(tier(Level::Secondary), tier(Level::County));
        assert!(tier(Level::County) > tier(Level::Township));
        assert!(tier(Level::Township) > tier(Level::VillageStation));
        assert_eq!(Level::Administration.tier(), None);
    }

    #[test]
    fn levels_round_trip_through_their_names() {
        for level in Level::ALL {
            assert_eq!(level.as_str().parse::<Level>().unwrap(), *level);
        }
        assert!("hospital".parse::<Level>().is_err());
    }
}
