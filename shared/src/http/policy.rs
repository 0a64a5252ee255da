//! The SSRF guard for outbound fetches of user-supplied URLs (DESIGN.md §4): only http(s),
//! no odd IP spellings, and no private, loopback, link-local, metadata or otherwise
//! non-public address — neither as an IP literal (checked here, per hop, by [`NetworkPolicy::check_url`])
//! nor after DNS resolution ([`GuardedResolver`], which reqwest uses for every connection).
//! Private networks are reachable only when configuration explicitly allows them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

/// Enables every address (local development, tests).
pub const ALLOW_PRIVATE_ENV: &str = "TRIBUTARY_ALLOW_PRIVATE_NETWORKS";
/// Comma-separated CIDRs that are allowed even though they are not public.
pub const ALLOWED_NETWORKS_ENV: &str = "TRIBUTARY_ALLOWED_NETWORKS";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SsrfError {
    #[error("unsupported URL scheme {0:?}: only http and https are fetched")]
    UnsupportedScheme(String),
    #[error("URL has no host")]
    MissingHost,
    #[error("refusing non-canonical IP address spelling {0:?}")]
    OddIpSpelling(String),
    #[error("refusing {host}: it resolves to a forbidden address {ip} ({reason})")]
    ForbiddenAddress {
        host: String,
        ip: IpAddr,
        reason: &'static str,
    },
    #[error("host {0} does not resolve")]
    Unresolvable(String),
    #[error("invalid URL: {0}")]
    Invalid(String),
}

/// Which non-public addresses outbound fetches may reach. The default is [`NetworkPolicy::strict`].
#[derive(Clone, Debug, Default)]
pub struct NetworkPolicy {
    allow_private: bool,
    allowed: Vec<IpNet>,
}

impl NetworkPolicy {
    /// Refuse every non-public address.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Allow everything: local use and tests only.
    pub fn allow_private() -> Self {
        Self {
            allow_private: true,
            allowed: Vec::new(),
        }
    }

    /// Strict, except for these networks.
    pub fn with_allowed_networks(nets: Vec<IpNet>) -> Self {
        Self {
            allow_private: false,
            allowed: nets,
        }
    }

    /// Reads [`ALLOW_PRIVATE_ENV`] and [`ALLOWED_NETWORKS_ENV`] from the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`NetworkPolicy::from_env`] with an injectable variable lookup. A bad value is
    /// an error naming the variable: a typo must not silently fall back to another policy.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let allow_private = match lookup(ALLOW_PRIVATE_ENV) {
            None => false,
            Some(value) => parse_bool(&value).ok_or_else(|| {
                format!("{ALLOW_PRIVATE_ENV} must be true, false, 1 or 0, got {value:?}")
            })?,
        };
        let allowed = match lookup(ALLOWED_NETWORKS_ENV) {
            None => Vec::new(),
            Some(value) => parse_networks(&value)
                .map_err(|bad| format!("{ALLOWED_NETWORKS_ENV}: {bad:?} is not a CIDR"))?,
        };
        Ok(Self {
            allow_private,
            allowed,
        })
    }

    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Refuses `ip` unless it is public, the policy allows everything, or it lies in an
    /// allowed network. `host` only labels the error.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), SsrfError> {
        if self.allow_private {
            return Ok(());
        }
        let Some(reason) = non_public_reason(ip) else {
            return Ok(());
        };
        // `::ffff:127.0.0.1` must match an allowed `127.0.0.0/8` like `127.0.0.1` does.
        let canonical = ip.to_canonical();
        if self.allowed.iter().any(|net| net.contains(&canonical)) {
            return Ok(());
        }
        Err(SsrfError::ForbiddenAddress {
            host: host.to_owned(),
            ip,
            reason,
        })
    }

    /// Scheme must be http/https and a host is required; an IP-literal host is checked with
    /// [`NetworkPolicy::check_ip`]. Domain names pass: they are judged after resolution by
    /// [`GuardedResolver`]. Does not resolve DNS.
    pub fn check_url(&self, url: &Url) -> Result<(), SsrfError> {
        check_scheme(url.scheme())?;
        match url.host() {
            None => Err(SsrfError::MissingHost),
            Some(Host::Domain("")) => Err(SsrfError::MissingHost),
            Some(Host::Domain(_)) => Ok(()),
            Some(Host::Ipv4(ip)) => self.check_ip(&ip.to_string(), IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => self.check_ip(&ip.to_string(), IpAddr::V6(ip)),
        }
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" => Some(false),
        "true" | "1" => Some(true),
        _ => None,
    }
}

/// Comma-separated CIDRs; a bare address means that single host. Errors with the bad item.
fn parse_networks(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| item.to_owned())
        })
        .collect()
}

fn check_scheme(scheme: &str) -> Result<(), SsrfError> {
    match scheme {
        "http" | "https" => Ok(()),
        other => Err(SsrfError::UnsupportedScheme(other.to_owned())),
    }
}

/// Parses user input into a URL. Odd IPv4 spellings (`http://2130706433/`,
/// `http://0177.0.0.1/`, `http://0x7f.1/`, `http://127.1/`, percent-encoded digits, a
/// trailing dot...) are refused *before* the url crate canonicalises them into a plain
/// address — they exist to fool filters, so they are refused even when public. URLs with
/// credentials (`http://user@host/`) are refused too: they are a classic host-confusion
/// trick, and a crawler has no business sending credentials. Then applies
/// [`NetworkPolicy::check_url`].
pub fn parse_url(raw: &str, policy: &NetworkPolicy) -> Result<Url, SsrfError> {
    // Clean the input the way the URL standard does, so that the host we inspect is the
    // host the url crate will see.
    let cleaned: String = raw
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let (scheme, rest) = split_scheme(&cleaned)?;
    check_scheme(&scheme)?;
    let authority = raw_authority(rest);
    let (userinfo, raw_host) = split_userinfo(authority);
    if userinfo.is_some() {
        return Err(SsrfError::Invalid(
            "credentials in URLs are not allowed".into(),
        ));
    }
    if looks_numeric(raw_host) && !is_canonical_ipv4(raw_host) {
        return Err(SsrfError::OddIpSpelling(raw_host.to_owned()));
    }
    let url = Url::parse(&cleaned).map_err(|e| SsrfError::Invalid(e.to_string()))?;
    // Anything the url crate read as an IPv4 address must have been written as exactly that
    // address; this catches spellings `looks_numeric` does not (e.g. `%31%32%37.0.0.1`).
    if let Some(Host::Ipv4(ip)) = url.host() {
        if raw_host != ip.to_string() {
            return Err(SsrfError::OddIpSpelling(raw_host.to_owned()));
        }
    }
    policy.check_url(&url)?;
    Ok(url)
}

/// Splits `scheme:rest`, lowercasing the scheme.
fn split_scheme(input: &str) -> Result<(String, &str), SsrfError> {
    let not_absolute = || SsrfError::Invalid(format!("{input:?} is not an absolute URL"));
    let (scheme, rest) = input.split_once(':').ok_or_else(not_absolute)?;
    let mut chars = scheme.chars();
    let starts_alpha = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_alpha || !chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) {
        return Err(not_absolute());
    }
    Ok((scheme.to_ascii_lowercase(), rest))
}

/// The authority of an http(s) URL as written: after any run of `/` or `\` (the URL standard
/// accepts both, and even none), up to the first `/`, `\`, `?` or `#`.
fn raw_authority(rest: &str) -> &str {
    let rest = rest.trim_start_matches(['/', '\\']);
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// Splits `userinfo@host:port` into the userinfo (if any) and the host without the port.
fn split_userinfo(authority: &str) -> (Option<&str>, &str) {
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let host = if host_port.starts_with('[') {
        // IPv6 literal: the url crate parses these strictly, and check_ip judges any
        // embedded IPv4 address.
        host_port
            .find(']')
            .map_or(host_port, |end| &host_port[..=end])
    } else {
        host_port
            .rsplit_once(':')
            .map_or(host_port, |(host, _port)| host)
    };
    (userinfo, host)
}

/// A host made only of dot-separated numbers (decimal, or hex with a `0x` prefix) — i.e.
/// something URL parsers turn into an IPv4 address.
fn looks_numeric(host: &str) -> bool {
    let is_number = |part: &str| {
        let hex = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X"));
        match hex {
            Some(digits) => digits.chars().all(|c| c.is_ascii_hexdigit()),
            None => part.chars().all(|c| c.is_ascii_digit()),
        }
    };
    host.split('.').any(|part| !part.is_empty()) && host.split('.').all(is_number)
}

/// `a.b.c.d` with decimal parts 0–255 and no leading zeros.
fn is_canonical_ipv4(host: &str) -> bool {
    host.parse::<Ipv4Addr>()
        .is_ok_and(|ip| ip.to_string() == host)
}

/// Why an address is not public, or `None` when it is public.
pub fn non_public_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// Non-public IPv4 ranges: (network, prefix length, reason). The first match wins, so the
/// metadata address comes before the link-local range containing it.
const V4_RANGES: &[(Ipv4Addr, u8, &str)] = &[
    (
        Ipv4Addr::new(169, 254, 169, 254),
        32,
        "cloud metadata service",
    ),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0.0.0.0/8)"),
    (
        Ipv4Addr::new(10, 0, 0, 0),
        8,
        "private network (10.0.0.0/8)",
    ),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "carrier-grade NAT (100.64.0.0/10)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (
        Ipv4Addr::new(172, 16, 0, 0),
        12,
        "private network (172.16.0.0/12)",
    ),
    (
        Ipv4Addr::new(192, 0, 0, 0),
        24,
        "IETF protocol assignments (192.0.0.0/24)",
    ),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (192.0.2.0/24)",
    ),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (192.88.99.0/24)",
    ),
    (
        Ipv4Addr::new(192, 168, 0, 0),
        16,
        "private network (192.168.0.0/16)",
    ),
    (
        Ipv4Addr::new(198, 18, 0, 0),
        15,
        "benchmarking (198.18.0.0/15)",
    ),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (198.51.100.0/24)",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (203.0.113.0/24)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved (240.0.0.0/4)"),
];

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let addr = u32::from(ip);
    V4_RANGES.iter().find_map(|&(net, len, reason)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        (addr & mask == u32::from(net) & mask).then_some(reason)
    })
}

/// Non-public IPv6 ranges that do not embed an IPv4 address.
const V6_RANGES: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified address"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        "discard-only (100::/64)",
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        "Teredo (2001::/32)",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation (2001:db8::/32)",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (3fff::/20)",
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        "unique local address (fc00::/7)",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let addr = u128::from(ip);
    let in_net = |net: Ipv6Addr, len: u8| {
        let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
        addr & mask == u128::from(net) & mask
    };
    let listed = V6_RANGES
        .iter()
        .find_map(|&(net, len, reason)| in_net(net, len).then_some(reason));
    if listed.is_some() {
        return listed;
    }
    // Addresses that carry an IPv4 address reach that IPv4 host, so judge the IPv4 address.
    if let Some(v4) = embedded_v4(ip) {
        return v4_reason(v4);
    }
    // Only 2000::/3 is allocated as global unicast; everything else left over is reserved.
    if !in_net(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        return Some("not global unicast (outside 2000::/3)");
    }
    None
}

/// The IPv4 address inside an IPv4-mapped (::ffff:0:0/96), IPv4-compatible (::/96), NAT64
/// (64:ff9b::/96) or 6to4 (2002::/16) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [.., a, b, c, d] = ip.octets();
    let low32 = Ipv4Addr::new(a, b, c, d);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(low32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        [0x2002, high, low, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
        _ => None,
    }
}

/// A reqwest DNS resolver that resolves with the system resolver and drops every address
/// the policy refuses. reqwest connects only to the addresses it returns, so a name cannot
/// be re-pointed at a private address between the check and the connect (DNS rebinding).
pub struct GuardedResolver {
    policy: Arc<NetworkPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<NetworkPolicy>) -> Self {
        Self { policy }
    }

    /// Resolves `host` and keeps the allowed addresses; fails when none is left.
    async fn resolve_allowed(
        policy: &NetworkPolicy,
        host: &str,
    ) -> Result<Vec<SocketAddr>, SsrfError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| SsrfError::Unresolvable(host.to_owned()))?
            .collect();
        let mut first_refusal = None;
        let mut allowed = Vec::with_capacity(resolved.len());
        for addr in resolved {
            match policy.check_ip(host, addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(refusal) => {
                    tracing::debug!(host, ip = %addr.ip(), "dropping forbidden address");
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match (allowed.is_empty(), first_refusal) {
            (false, _) => Ok(allowed),
            (true, Some(refusal)) => Err(refusal),
            (true, None) => Err(SsrfError::Unresolvable(host.to_owned())),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let allowed = Self::resolve_allowed(&policy, name.as_str()).await?;
            let addrs: reqwest::dns::Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::dns::Resolve;

    fn net(cidr: &str) -> IpNet {
        cidr.parse().unwrap()
    }

    /// Every one of these must be refused under the strict policy.
    const MUST_REFUSE: &[&str] = &[
        // loopback, in every spelling
        "http://127.0.0.1/",
        "http://127.0.0.1:8080/admin",
        "http://127.255.255.254/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://127.1/",
        "http://127.0.1/",
        "http://0177.1/",
        "http://127.0.0.1./",
        "http://%31%32%37.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "HTTP://127.0.0.1/",
        "  http://127.0.0.1/  ",
        "http:/\\127.0.0.1/",
        "http://example.com@127.0.0.1/",
        // unspecified
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        // metadata and link-local
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        // private, shared and special-purpose
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://192.0.0.8/",
        "http://192.0.2.1/",
        "http://198.18.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://[fc00::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        // not http(s), or no host
        "file:///etc/passwd",
        "gopher://x/",
        "ftp://example.com/",
        "javascript:alert(1)",
        "data:text/html,<h1>x</h1>",
        "dict://127.0.0.1:11211/",
        "http:///",
        "//example.com/",
        "not a url",
        // public, but spelled oddly: refused anyway
        "http://1572395042/",
        "http://093.184.216.34/",
    ];

    #[test]
    fn strict_refuses_the_ssrf_battery() {
        let strict = NetworkPolicy::strict();
        for raw in MUST_REFUSE {
            assert!(parse_url(raw, &strict).is_err(), "{raw} was accepted");
        }
        assert!(MUST_REFUSE.len() >= 25);
    }

    #[test]
    fn strict_accepts_public_urls() {
        let strict = NetworkPolicy::strict();
        for raw in [
            "https://example.com/",
            "http://93.184.216.34/",
            "https://[2606:2800:220:1::]/",
            "https://docs.example.org:8443/a/b?c=d#e",
            "http://8.8.8.8/",
            "http://1.2.3.com/",
        ] {
            let url = parse_url(raw, &strict).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(matches!(url.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn refusals_say_why() {
        let strict = NetworkPolicy::strict();
        assert_eq!(
            parse_url("http://2130706433/", &strict),
            Err(SsrfError::OddIpSpelling("2130706433".into()))
        );
        assert_eq!(
            parse_url("http://0x7f.1/", &strict),
            Err(SsrfError::OddIpSpelling("0x7f.1".into()))
        );
        assert_eq!(
            parse_url("ftp://example.com/", &strict),
            Err(SsrfError::UnsupportedScheme("ftp".into()))
        );
        assert_eq!(
            parse_url("http://169.254.169.254/latest/meta-data/", &strict),
            Err(SsrfError::ForbiddenAddress {
                host: "169.254.169.254".into(),
                ip: "169.254.169.254".parse().unwrap(),
                reason: "cloud metadata service",
            })
        );
        assert!(matches!(
            parse_url("http://[::ffff:127.0.0.1]/", &strict),
            Err(SsrfError::ForbiddenAddress {
                reason: "loopback",
                ..
            })
        ));
    }

    #[test]
    fn non_public_reason_covers_the_special_ranges() {
        for ip in [
            "0.1.2.3",
            "10.1.1.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.0.1",
            "172.20.0.1",
            "192.0.0.1",
            "192.0.2.55",
            "192.168.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.251",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::a00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:101::1",
            "2001:db8::",
            "2001::1",
            "fc00::",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff00::",
            "64:ff9b:1::1",
            "100::1",
            "3fff::1",
            "1::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(non_public_reason(ip).is_some(), "{ip} judged public");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860:4860::8888",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(non_public_reason(ip), None, "{ip} judged non-public");
        }
    }

    #[test]
    fn allow_private_accepts_loopback() {
        let url = parse_url("http://127.0.0.1:8080/", &NetworkPolicy::allow_private()).unwrap();
        assert_eq!(url.port(), Some(8080));
    }

    #[test]
    fn allowed_networks_open_only_those_networks() {
        let policy = NetworkPolicy::with_allowed_networks(vec![net("127.0.0.0/8")]);
        assert!(parse_url("http://127.0.0.1/", &policy).is_ok());
        assert!(parse_url("http://[::ffff:127.0.0.1]/", &policy).is_ok());
        assert!(parse_url("http://10.0.0.1/", &policy).is_err());
        assert!(parse_url("http://169.254.169.254/", &policy).is_err());
        // odd spellings stay refused even inside an allowed network
        assert!(parse_url("http://127.1/", &policy).is_err());
    }

    fn lookup<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        }
    }

    #[test]
    fn from_lookup_parses_the_environment() {
        let policy = NetworkPolicy::from_lookup(lookup(&[])).unwrap();
        assert!(!policy.allows_private());
        assert!(policy.allowed.is_empty());

        for (value, expected) in [
            ("true", true),
            ("1", true),
            ("TRUE", true),
            ("0", false),
            ("false", false),
        ] {
            let policy = NetworkPolicy::from_lookup(lookup(&[(ALLOW_PRIVATE_ENV, value)])).unwrap();
            assert_eq!(policy.allows_private(), expected, "{value}");
        }

        let policy = NetworkPolicy::from_lookup(lookup(&[(
            ALLOWED_NETWORKS_ENV,
            " 10.1.0.0/16, fd00::/8 ,192.168.1.10",
        )]))
        .unwrap();
        assert_eq!(
            policy.allowed,
            vec![net("10.1.0.0/16"), net("fd00::/8"), net("192.168.1.10/32")]
        );
        assert!(policy.check_ip("h", "10.1.2.3".parse().unwrap()).is_ok());
        assert!(policy.check_ip("h", "10.2.0.1".parse().unwrap()).is_err());
    }

    #[test]
    fn from_lookup_names_the_bad_variable() {
        let err =
            NetworkPolicy::from_lookup(lookup(&[(ALLOW_PRIVATE_ENV, "yes please")])).unwrap_err();
        assert!(err.contains(ALLOW_PRIVATE_ENV), "{err}");
        let err =
            NetworkPolicy::from_lookup(lookup(&[(ALLOWED_NETWORKS_ENV, "10.0.0.0/8,10.0.0.0/33")]))
                .unwrap_err();
        assert!(
            err.contains(ALLOWED_NETWORKS_ENV) && err.contains("10.0.0.0/33"),
            "{err}"
        );
    }

    fn resolve(policy: NetworkPolicy, host: &str) -> reqwest::dns::Resolving {
        GuardedResolver::new(Arc::new(policy)).resolve(host.parse().unwrap())
    }

    #[tokio::test]
    async fn resolver_drops_forbidden_addresses() {
        let err = match resolve(NetworkPolicy::strict(), "localhost").await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(err) => err,
        };
        assert!(
            err.to_string().contains("resolves to a forbidden address"),
            "{err}"
        );
        assert!(err.downcast_ref::<SsrfError>().is_some());
    }

    #[tokio::test]
    async fn resolver_returns_loopback_when_allowed() {
        let addrs: Vec<SocketAddr> = resolve(NetworkPolicy::allow_private(), "localhost")
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(|addr| addr.ip().is_loopback()),
            "{addrs:?}"
        );
        assert!(
            addrs
                .iter()
                .any(|addr| addr.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
            "{addrs:?}"
        );
    }
}
