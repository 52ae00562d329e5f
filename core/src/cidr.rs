//! IP address blocks (CIDR), for drop rules and queries: `10.0.0.0/8`, `2001:db8::/32`,
//! or a single address.
//!
//! Parsing is strict: the prefix is decimal digits within the family's
//! width, and an address with bits set below the prefix (`10.1.0.0/8`) is
//! refused, since it is almost always a typo for a different block.
//! Matching compares the top `prefix` bits; an IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`) is matched as the IPv4 address it carries.

use std::net::IpAddr;

/// An IPv4 or IPv6 block: a network address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR/PREFIX`, or a bare address (a block of one).
    ///
    /// The error says what is wrong, for the caller to wrap with the key.
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let width = width(addr);
        let prefix = match prefix {
            None => width,
            Some(p) => {
                let n = (!p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| p.parse::<u8>().ok())
                    .flatten()
                    .filter(|n| *n <= width)
                    .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {width}"))?;
                n
            }
        };
        let net = IpNet { addr, prefix };
        if bits(addr) & !net.mask() != 0 {
            let fixed = IpNet {
                addr: from_bits(addr, bits(addr) & net.mask()),
                prefix,
            };
            return Err(format!(
                "{s:?} has host bits set; did you mean \"{}/{prefix}\"?",
                fixed.addr
            ));
        }
        Ok(net)
    }

    /// Whether `ip` lies in this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        bits(ip) & self.mask() == bits(self.addr)
    }

    /// The prefix as a mask in the low `width` bits of a `u128`.
    fn mask(&self) -> u128 {
        let width = width(self.addr);
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        all & !all.checked_shr(u32::from(self.prefix)).unwrap_or(0)
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn width(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        // Only called with bits taken from a v4 address, so they fit.
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(bits).unwrap_or(0).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v4_blocks() {
        let n = IpNet::parse("10.0.0.0/8").unwrap();
        assert!(n.contains(ip("10.0.0.0")));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("9.255.255.255")));
        let n = IpNet::parse("192.168.1.128/25").unwrap();
        assert!(n.contains(ip("192.168.1.200")));
        assert!(!n.contains(ip("192.168.1.127")));
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.9")));
        assert!(!IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("2001:db8::1")));
    }

    #[test]
    fn v6_blocks() {
        let n = IpNet::parse("2001:db8::/32").unwrap();
        assert!(n.contains(ip("2001:db8:ffff::1")));
        assert!(!n.contains(ip("2001:db9::1")));
        assert!(!n.contains(ip("10.0.0.1")));
        assert!(IpNet::parse("::/0").unwrap().contains(ip("::1")));
        let one = IpNet::parse("fe80::1").unwrap();
        assert!(one.contains(ip("fe80::1")));
        assert!(!one.contains(ip("fe80::2")));
        assert!(IpNet::parse("2001:db8::1/128")
            .unwrap()
            .contains(ip("2001:db8::1")));
    }

    #[test]
    fn exact_addresses_and_mapped_v4() {
        let n = IpNet::parse("203.0.113.9").unwrap();
        assert_eq!(n.to_string(), "203.0.113.9/32");
        assert!(n.contains(ip("203.0.113.9")));
        assert!(!n.contains(ip("203.0.113.10")));
        assert!(IpNet::parse("10.0.0.0/8")
            .unwrap()
            .contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn bad_blocks_are_refused() {
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "::/129",
            "10.0.0/8",
            "host",
            "10.0.0.0/8/8",
            "2001:db8::/0032",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad:?} accepted");
        }
        let e = IpNet::parse("10.1.0.0/8").unwrap_err();
        assert!(e.contains("did you mean \"10.0.0.0/8\""), "{e}");
        let e = IpNet::parse("2001:db8::1/32").unwrap_err();
        assert!(e.contains("2001:db8::/32"), "{e}");
    }
}
