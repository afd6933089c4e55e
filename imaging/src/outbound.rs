//! Where the gateway's own outbound connections may go: DICOM destinations here, and the
//! gateway's webhooks. A coordinator types a destination's host; without a policy, the
//! relay would connect wherever that leads, the gateway's own ports and a cloud's
//! metadata service included, and tell in the forward's error what answered there.
//!
//! The check is made on the resolved addresses, and the connection goes to an address
//! that was checked (never a second lookup that could answer differently). By default
//! these are refused: loopback, link-local (169.254.0.0/16, fe80::/10: the metadata
//! services of most clouds, 169.254.169.254 among them), Alibaba Cloud's metadata
//! address 100.100.100.200, AWS's IPv6 one fd00:ec2::254, unspecified, multicast and
//! broadcast addresses, and 0.0.0.0/8. Private ranges stay allowed: hospital PACS and
//! intranet endpoints live there. `allow` widens the policy (a test allows loopback),
//! `deny` narrows it and wins over everything.

use std::net::{IpAddr, SocketAddr};

pub use ipnet::IpNet;

/// The outbound address policy (see the module).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Ranges allowed beyond the default.
    pub allow: Vec<IpNet>,
    /// Ranges refused, whatever else says.
    pub deny: Vec<IpNet>,
    /// The gateway's own listeners on a specific address: never a destination (one on
    /// an unspecified address is on loopback, refused anyway, or on addresses it does
    /// not know; `deny` covers those).
    pub own: Vec<SocketAddr>,
}

/// Why an outbound connection was not made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address is one the policy refuses.
    #[error("{0} is an address outbound connections may not reach (the outbound policy)")]
    Address(IpAddr),
    /// The address and port are the gateway's own listener.
    #[error("{0} is this gateway's own listener")]
    Own(SocketAddr),
    /// The name resolves to no address at all.
    #[error("{0} cannot be resolved")]
    Unresolved(String),
}

/// Addresses refused unless `allow` names them: the cloud metadata services' outside
/// link-local, and "this network".
const METADATA: [&str; 3] = ["100.100.100.200/32", "fd00:ec2::254/128", "0.0.0.0/8"];

impl Policy {
    /// Whether a connection to `to` may be made: its address, and not the gateway's own
    /// listener.
    pub fn check_socket(&self, to: SocketAddr) -> Result<(), Refused> {
        let canonical = SocketAddr::new(to.ip().to_canonical(), to.port());
        if self.own.contains(&canonical) {
            return Err(Refused::Own(canonical));
        }
        self.check(to.ip())
    }

    /// Whether a connection to `ip` may be made.
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return Err(Refused::Address(ip));
        }
        if self.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        // An IPv4 address carried in an IPv6 one (NAT64, 6to4, IPv4-compatible) is
        // where a translating network delivers: it is checked as itself.
        if let IpAddr::V6(v6) = ip {
            if let Some(v4) = embedded_v4(v6) {
                return self.check(IpAddr::V4(v4));
            }
        }
        let special = match ip {
            IpAddr::V4(v4) => {
                v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_unspecified()
                    || v4.is_multicast()
                    || v4.is_broadcast()
            }
            IpAddr::V6(v6) => {
                v6.is_loopback()
                    || v6.is_unicast_link_local()
                    || v6.is_unspecified()
                    || v6.is_multicast()
            }
        };
        let metadata = METADATA
            .iter()
            .any(|n| n.parse::<IpNet>().is_ok_and(|n| n.contains(&ip)));
        if special || metadata {
            return Err(Refused::Address(ip));
        }
        Ok(())
    }

    /// The addresses of `host` (a name or an address) at `port` that a connection may go
    /// to, in the resolver's order; refused if there are none.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| Refused::Unresolved(host.to_owned()))?
                .collect(),
        };
        let mut refused = None;
        let allowed: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match self.check_socket(*a) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(e);
                    false
                }
            })
            .collect();
        if allowed.is_empty() {
            return Err(refused.unwrap_or_else(|| Refused::Unresolved(host.to_owned())));
        }
        Ok(allowed)
    }
}

/// The IPv4 address an IPv6 address carries: NAT64's well-known and local-use prefixes
/// (64:ff9b::/96, 64:ff9b:1::/48; RFC 6052, RFC 8215), 6to4 (2002::/16; RFC 3056) and
/// the deprecated IPv4-compatible form (::a.b.c.d).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let last = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        return Some(last);
    }
    if s[0] == 0x2002 {
        return Some(std::net::Ipv4Addr::new(o[2], o[3], o[4], o[5]));
    }
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(last);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_refuses_the_machine_itself_and_metadata_and_allows_private_ranges() {
        let p = Policy::default();
        for refused in [
            "127.0.0.1",
            "127.3.4.5",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
            "169.254.0.23",
            "fe80::1",
            "100.100.100.200",
            "fd00:ec2::254",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "224.0.0.1",
            "ff02::1",
            "255.255.255.255",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::7f00:1",
            "2002:a9fe:a9fe::1",
            "::7f00:1",
        ] {
            assert!(p.check(ip(refused)).is_err(), "{refused}");
        }
        for allowed in [
            "64:ff9b::a01:203",
            "2002:cb00:7109::1",
            "10.1.2.3",
            "192.168.1.10",
            "172.16.0.5",
            "fd12::5",
            "203.0.113.9",
            "100.64.1.1",
        ] {
            assert!(p.check(ip(allowed)).is_ok(), "{allowed}");
        }
        let wide = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap()],
            deny: vec!["10.0.0.0/8".parse().unwrap()],
            own: vec!["127.0.0.1:8080".parse().unwrap()],
        };
        assert!(
            wide.check_socket("127.0.0.1:8080".parse().unwrap())
                .is_err()
        );
        assert!(
            wide.check_socket("127.0.0.1:11113".parse().unwrap())
                .is_ok()
        );
        assert!(wide.check(ip("127.0.0.1")).is_ok());
        assert!(wide.check(ip("::1")).is_err());
        assert!(wide.check(ip("10.1.2.3")).is_err());
    }

    #[tokio::test]
    async fn names_are_checked_by_what_they_resolve_to() {
        let p = Policy::default();
        assert!(matches!(
            p.resolve("localhost", 104).await,
            Err(Refused::Address(_))
        ));
        assert!(p.resolve("[::1]", 104).await.is_err());
        assert_eq!(
            p.resolve("192.168.7.7", 104).await.unwrap(),
            vec![SocketAddr::new(ip("192.168.7.7"), 104)]
        );
        let loopback = Policy {
            allow: vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
            deny: vec![],
            own: vec![],
        };
        let found = loopback.resolve("localhost", 104).await.unwrap();
        assert!(found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
    }
}
