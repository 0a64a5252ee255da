//! Verifying inbound webhook signatures (DESIGN §4): every scheme is an HMAC-SHA256 over the
//! exact body bytes as received (before any parsing), compared in constant time; the
//! timestamped schemes (Slack, generic) also refuse a timestamp more than
//! [`TOLERANCE_SECS`] away from the receiver's clock, in either direction, to stop replays.
//!
//! | scheme    | headers                                                          | signed bytes          |
//! |-----------|------------------------------------------------------------------|-----------------------|
//! | Jira      | `X-Hub-Signature: sha256=<hex>`                                  | body                  |
//! | GitHub    | `X-Hub-Signature-256: sha256=<hex>`                              | body                  |
//! | Slack v0  | `X-Slack-Request-Timestamp: <unix s>`, `X-Slack-Signature: v0=<hex>` | `v0:<ts>:<body>`  |
//! | generic   | `X-Tributary-Timestamp: <unix s>`, `X-Tributary-Signature: v1=<hex>[, v1=<hex>…]` | `<ts>.<body>` |
//!
//! The generic scheme is the one our own webhook sink signs with
//! ([`crate::sinks::webhook`]); several `v1=` entries (a key rotation) are accepted when any
//! one matches.
//!
//! Header values are read as bytes: a missing header is [`SignatureError::Missing`]; a
//! repeated one, one that is not ASCII, lacks its prefix, or is not hex of the right length
//! is [`SignatureError::Malformed`]. Timestamps must be plain decimal digits. Nothing here
//! panics on hostile input, and neither secrets nor bodies appear in errors.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::sinks::webhook;

type HmacSha256 = Hmac<Sha256>;

/// How far a signed timestamp may be from the receiver's clock, in seconds.
pub const TOLERANCE_SECS: i64 = 300;

pub const JIRA_SIGNATURE_HEADER: &str = "X-Hub-Signature";
pub const GITHUB_SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
pub const SLACK_TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
pub const SLACK_SIGNATURE_HEADER: &str = "X-Slack-Signature";
pub const GENERIC_TIMESTAMP_HEADER: &str = webhook::TIMESTAMP_HEADER;
pub const GENERIC_SIGNATURE_HEADER: &str = webhook::SIGNATURE_HEADER;

/// GitHub's per-delivery GUID (unchanged when a delivery is redelivered).
pub const GITHUB_DELIVERY_HEADER: &str = "X-GitHub-Delivery";
/// Jira Cloud's per-delivery id, unique within the site and unchanged across retries.
pub const JIRA_DELIVERY_HEADER: &str = "X-Atlassian-Webhook-Identifier";

/// Bytes in an HMAC-SHA256 tag.
const TAG_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    /// The named header is absent.
    #[error("missing {0} header")]
    Missing(&'static str),
    /// The named header is present but not in the scheme's format.
    #[error("malformed {0} header")]
    Malformed(&'static str),
    /// Well-formed, but the signature is not the body's under this secret.
    #[error("signature does not match")]
    Mismatch,
    /// The signed timestamp is outside the tolerance.
    #[error("signature timestamp is outside the allowed window")]
    Stale,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookScheme {
    Jira,
    Github,
    Slack,
    Generic,
}

/// Checks a request under `scheme`; `now` (unix seconds) is used by the timestamped schemes.
pub fn verify(
    scheme: WebhookScheme,
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    match scheme {
        WebhookScheme::Jira => verify_jira(secret, headers, body),
        WebhookScheme::Github => verify_github(secret, headers, body),
        WebhookScheme::Slack => verify_slack(secret, headers, body, now),
        WebhookScheme::Generic => verify_generic(secret, headers, body, now),
    }
}

/// Jira Cloud: `X-Hub-Signature: sha256=<hex>` HMAC-SHA256 of the raw body.
pub fn verify_jira(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    hub_signature(secret, headers, body, JIRA_SIGNATURE_HEADER)
}

/// GitHub: `X-Hub-Signature-256: sha256=<hex>` HMAC-SHA256 of the raw body.
pub fn verify_github(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    hub_signature(secret, headers, body, GITHUB_SIGNATURE_HEADER)
}

/// Slack v0: basestring `v0:<X-Slack-Request-Timestamp>:<body>`, `X-Slack-Signature:
/// v0=<hex>`, |now − ts| ≤ 300 s.
pub fn verify_slack(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (raw_timestamp, timestamp) = timestamp(headers, SLACK_TIMESTAMP_HEADER)?;
    let signature = header(headers, SLACK_SIGNATURE_HEADER)?;
    let tag = tag(signature, "v0=").ok_or(SignatureError::Malformed(SLACK_SIGNATURE_HEADER))?;
    fresh(timestamp, now)?;
    let mut mac = hmac(secret)?;
    mac.update(b"v0:");
    mac.update(raw_timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

/// Generic: `X-Tributary-Timestamp` + `X-Tributary-Signature: v1=<hex HMAC(secret,
/// "<ts>.<body>")>` (several comma-separated entries allowed), 300 s tolerance: the scheme
/// our webhook sink signs with, checked by [`webhook::verify`].
pub fn verify_generic(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (_, timestamp) = timestamp(headers, GENERIC_TIMESTAMP_HEADER)?;
    let signature = header(headers, GENERIC_SIGNATURE_HEADER)?;
    let any_well_formed = signature
        .split(',')
        .any(|entry| tag(entry.trim(), "v1=").is_some());
    if !any_well_formed {
        return Err(SignatureError::Malformed(GENERIC_SIGNATURE_HEADER));
    }
    fresh(timestamp, now)?;
    if webhook::verify(secret, timestamp, body, signature, now, TOLERANCE_SECS) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// What identifies a delivery of the untimestamped schemes (Jira, GitHub), so a captured
/// one cannot trigger again: the provider's delivery id, else the SHA-256 of the signed
/// body (a provider never sends the same body twice: it carries the event's time). `None`
/// for the timestamped schemes, whose signatures expire.
pub fn delivery_key(
    scheme: WebhookScheme,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Option<String> {
    use sha2::Digest as _;
    let header = match scheme {
        WebhookScheme::Jira => JIRA_DELIVERY_HEADER,
        WebhookScheme::Github => GITHUB_DELIVERY_HEADER,
        WebhookScheme::Slack | WebhookScheme::Generic => return None,
    };
    let id = headers
        .get(header)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 200);
    Some(match id {
        Some(id) => format!("id:{}", hex::encode(Sha256::digest(id.as_bytes()))),
        None => format!("body:{}", hex::encode(Sha256::digest(body))),
    })
}

fn hub_signature(
    secret: &[u8],
    headers: &http::HeaderMap,
    body: &[u8],
    name: &'static str,
) -> Result<(), SignatureError> {
    let signature = header(headers, name)?;
    let tag = tag(signature, "sha256=").ok_or(SignatureError::Malformed(name))?;
    let mut mac = hmac(secret)?;
    mac.update(body);
    mac.verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
}

fn hmac(secret: &[u8]) -> Result<HmacSha256, SignatureError> {
    // HMAC accepts keys of any length; this cannot fail, but never panic.
    HmacSha256::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)
}

/// The single value of a header, as ASCII text.
fn header<'a>(headers: &'a http::HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    let mut values = headers.get_all(name).iter();
    let value = values.next().ok_or(SignatureError::Missing(name))?;
    if values.next().is_some() {
        return Err(SignatureError::Malformed(name));
    }
    value.to_str().map_err(|_| SignatureError::Malformed(name))
}

/// `<prefix><64 hex digits>` → the 32-byte tag.
fn tag(value: &str, prefix: &str) -> Option<[u8; TAG_LEN]> {
    let hex_digits = value.trim().strip_prefix(prefix)?;
    let mut tag = [0u8; TAG_LEN];
    hex::decode_to_slice(hex_digits, &mut tag).ok()?;
    Some(tag)
}

/// A timestamp header: the raw text (what was signed) and its value. Only plain decimal
/// digits (at most 18, so it fits an `i64`) are accepted.
fn timestamp<'a>(
    headers: &'a http::HeaderMap,
    name: &'static str,
) -> Result<(&'a str, i64), SignatureError> {
    let raw = header(headers, name)?;
    if raw.is_empty() || raw.len() > 18 || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SignatureError::Malformed(name));
    }
    let value = raw.parse().map_err(|_| SignatureError::Malformed(name))?;
    Ok((raw, value))
}

fn fresh(timestamp: i64, now: i64) -> Result<(), SignatureError> {
    let within = now
        .checked_sub(timestamp)
        .and_then(i64::checked_abs)
        .is_some_and(|age| age <= TOLERANCE_SECS);
    if within {
        Ok(())
    } else {
        Err(SignatureError::Stale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

    // docs.github.com, "Validating webhook deliveries", "Testing the webhook payload
    // validation".
    const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    // api.slack.com, "Verifying requests from Slack", the worked example.
    const SLACK_SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TIMESTAMP: i64 = 1531420618;
    const SLACK_BODY: &[u8] = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIGNATURE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    // RFC 4231, test case 2 (HMAC-SHA-256): key "Jefe".
    const RFC4231_KEY: &[u8] = b"Jefe";
    const RFC4231_DATA: &[u8] = b"what do ya want for nothing?";
    const RFC4231_MAC: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn slack_headers(timestamp: &str, signature: &str) -> HeaderMap {
        headers(&[
            ("x-slack-request-timestamp", timestamp.as_bytes()),
            ("x-slack-signature", signature.as_bytes()),
        ])
    }

    fn generic_headers(timestamp: i64, signature: &str) -> HeaderMap {
        headers(&[
            ("x-tributary-timestamp", timestamp.to_string().as_bytes()),
            ("x-tributary-signature", signature.as_bytes()),
        ])
    }

    #[test]
    fn github_published_example() {
        let ok = headers(&[("X-Hub-Signature-256", GITHUB_SIGNATURE.as_bytes())]);
        assert_eq!(verify_github(GITHUB_SECRET, &ok, GITHUB_BODY), Ok(()));
        assert_eq!(
            verify(WebhookScheme::Github, GITHUB_SECRET, &ok, GITHUB_BODY, 0),
            Ok(())
        );
        // Upper-case hex digits are the same signature.
        let upper = format!("sha256={}", GITHUB_SIGNATURE[7..].to_uppercase());
        let upper = headers(&[("x-hub-signature-256", upper.as_bytes())]);
        assert_eq!(verify_github(GITHUB_SECRET, &upper, GITHUB_BODY), Ok(()));

        assert_eq!(
            verify_github(GITHUB_SECRET, &ok, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_github(b"It's a Secret to Nobody", &ok, GITHUB_BODY),
            Err(SignatureError::Mismatch)
        );
        // The same value in Jira's header name is not GitHub's.
        let jira_named = headers(&[("x-hub-signature", GITHUB_SIGNATURE.as_bytes())]);
        assert_eq!(
            verify_github(GITHUB_SECRET, &jira_named, GITHUB_BODY),
            Err(SignatureError::Missing("X-Hub-Signature-256"))
        );
    }

    #[test]
    fn jira_hmac_of_the_raw_body() {
        let ok = headers(&[(
            "X-Hub-Signature",
            format!("sha256={RFC4231_MAC}").as_bytes(),
        )]);
        assert_eq!(verify_jira(RFC4231_KEY, &ok, RFC4231_DATA), Ok(()));
        assert_eq!(
            verify(WebhookScheme::Jira, RFC4231_KEY, &ok, RFC4231_DATA, 0),
            Ok(())
        );
        // GitHub's published pair under Jira's header: the same construction.
        let github_pair = headers(&[("x-hub-signature", GITHUB_SIGNATURE.as_bytes())]);
        assert_eq!(
            verify_jira(GITHUB_SECRET, &github_pair, GITHUB_BODY),
            Ok(())
        );

        assert_eq!(
            verify_jira(RFC4231_KEY, &ok, b"what do ya want for nothing!"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_jira(b"jefe", &ok, RFC4231_DATA),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_jira(RFC4231_KEY, &HeaderMap::new(), RFC4231_DATA),
            Err(SignatureError::Missing("X-Hub-Signature"))
        );
    }

    #[test]
    fn hub_signatures_reject_garbled_headers() {
        let digits = &RFC4231_MAC;
        let garbled: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            digits.as_bytes().to_vec(),
            format!("sha1={digits}").into_bytes(),
            format!("SHA256={digits}").into_bytes(),
            format!("sha256={}", &digits[..62]).into_bytes(),
            format!("sha256={digits}00").into_bytes(),
            format!("sha256={}zz", &digits[..62]).into_bytes(),
            format!("sha256= {digits}x").into_bytes(),
            b"sha256=".to_vec(),
            b"sha256=\xff\xfe\x80".to_vec(),
            b"\xc3\xa9".to_vec(),
        ];
        for value in garbled {
            let map = headers(&[("x-hub-signature", &value)]);
            assert_eq!(
                verify_jira(RFC4231_KEY, &map, RFC4231_DATA),
                Err(SignatureError::Malformed("X-Hub-Signature")),
                "{value:?}"
            );
        }
        // A repeated header is ambiguous.
        let signature = format!("sha256={digits}");
        let twice = headers(&[
            ("x-hub-signature", signature.as_bytes()),
            ("x-hub-signature", signature.as_bytes()),
        ]);
        assert_eq!(
            verify_jira(RFC4231_KEY, &twice, RFC4231_DATA),
            Err(SignatureError::Malformed("X-Hub-Signature"))
        );
    }

    #[test]
    fn slack_published_example() {
        let ok = slack_headers(&SLACK_TIMESTAMP.to_string(), SLACK_SIGNATURE);
        for now in [
            SLACK_TIMESTAMP,
            SLACK_TIMESTAMP + 60,
            SLACK_TIMESTAMP + 300,
            SLACK_TIMESTAMP - 300,
        ] {
            assert_eq!(
                verify_slack(SLACK_SECRET, &ok, SLACK_BODY, now),
                Ok(()),
                "{now}"
            );
        }
        assert_eq!(
            verify(
                WebhookScheme::Slack,
                SLACK_SECRET,
                &ok,
                SLACK_BODY,
                SLACK_TIMESTAMP
            ),
            Ok(())
        );

        let mut tampered = SLACK_BODY.to_vec();
        tampered[6] ^= 1;
        assert_eq!(
            verify_slack(SLACK_SECRET, &ok, &tampered, SLACK_TIMESTAMP),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_slack(
                b"8f742231b10e8888abcd99yyyzzz85a6",
                &ok,
                SLACK_BODY,
                SLACK_TIMESTAMP
            ),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature.
        let moved = slack_headers(&(SLACK_TIMESTAMP + 1).to_string(), SLACK_SIGNATURE);
        assert_eq!(
            verify_slack(SLACK_SECRET, &moved, SLACK_BODY, SLACK_TIMESTAMP),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn slack_stale_timestamps() {
        let ok = slack_headers(&SLACK_TIMESTAMP.to_string(), SLACK_SIGNATURE);
        for now in [
            SLACK_TIMESTAMP + 301,
            SLACK_TIMESTAMP - 301,
            SLACK_TIMESTAMP + 86_400,
            1_700_000_000,
            i64::MIN,
            i64::MAX,
        ] {
            assert_eq!(
                verify_slack(SLACK_SECRET, &ok, SLACK_BODY, now),
                Err(SignatureError::Stale),
                "{now}"
            );
        }
    }

    #[test]
    fn slack_missing_and_garbled_headers() {
        let only_signature = headers(&[("x-slack-signature", SLACK_SIGNATURE.as_bytes())]);
        assert_eq!(
            verify_slack(SLACK_SECRET, &only_signature, SLACK_BODY, SLACK_TIMESTAMP),
            Err(SignatureError::Missing("X-Slack-Request-Timestamp"))
        );
        let only_timestamp = headers(&[("x-slack-request-timestamp", b"1531420618")]);
        assert_eq!(
            verify_slack(SLACK_SECRET, &only_timestamp, SLACK_BODY, SLACK_TIMESTAMP),
            Err(SignatureError::Missing("X-Slack-Signature"))
        );
        for timestamp in [
            "",
            "abc",
            "-1531420618",
            "+1531420618",
            " 1531420618",
            "1531420618.5",
            "99999999999999999999",
        ] {
            let map = slack_headers(timestamp, SLACK_SIGNATURE);
            assert_eq!(
                verify_slack(SLACK_SECRET, &map, SLACK_BODY, SLACK_TIMESTAMP),
                Err(SignatureError::Malformed("X-Slack-Request-Timestamp")),
                "{timestamp:?}"
            );
        }
        for signature in [
            "",
            &SLACK_SIGNATURE[3..],
            "v1=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
            "v0=a2114d57",
            "v0=not-hex",
        ] {
            let map = slack_headers("1531420618", signature);
            assert_eq!(
                verify_slack(SLACK_SECRET, &map, SLACK_BODY, SLACK_TIMESTAMP),
                Err(SignatureError::Malformed("X-Slack-Signature")),
                "{signature:?}"
            );
        }
    }

    #[test]
    fn generic_matches_our_webhook_sink() {
        let secret = b"tributary-webhook-secret";
        let body = br#"{"event":"documents.deleted","ids":["a"]}"#;
        let now = 1_700_000_000;
        let signature = webhook::sign(secret, now, body);
        let ok = generic_headers(now, &signature);
        for at in [now, now + 300, now - 300] {
            assert_eq!(verify_generic(secret, &ok, body, at), Ok(()), "{at}");
        }
        assert_eq!(
            verify(WebhookScheme::Generic, secret, &ok, body, now),
            Ok(())
        );
        // Independent computation of the documented scheme.
        let mut mac = HmacSha256::new_from_slice(secret).unwrap();
        mac.update(format!("{now}.").as_bytes());
        mac.update(body);
        let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature, expected);

        // Rotation: any matching entry is enough; a garbled neighbour does not hurt.
        let rotated = format!("v1=zz, {}, {signature}", webhook::sign(b"old", now, body));
        assert_eq!(
            verify_generic(secret, &generic_headers(now, &rotated), body, now),
            Ok(())
        );

        assert_eq!(
            verify_generic(secret, &ok, b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_generic(b"other", &ok, body, now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_generic(secret, &generic_headers(now + 1, &signature), body, now),
            Err(SignatureError::Mismatch)
        );
        for at in [now + 301, now - 301, i64::MIN] {
            assert_eq!(
                verify_generic(secret, &ok, body, at),
                Err(SignatureError::Stale),
                "{at}"
            );
        }
        assert_eq!(
            verify_generic(secret, &HeaderMap::new(), body, now),
            Err(SignatureError::Missing("X-Tributary-Timestamp"))
        );
        let no_signature = headers(&[("x-tributary-timestamp", b"1700000000")]);
        assert_eq!(
            verify_generic(secret, &no_signature, body, now),
            Err(SignatureError::Missing("X-Tributary-Signature"))
        );
        for garbled in ["", "v1=", "v0=abc", &signature[3..], "v1=zz, v2=00"] {
            assert_eq!(
                verify_generic(secret, &generic_headers(now, garbled), body, now),
                Err(SignatureError::Malformed("X-Tributary-Signature")),
                "{garbled:?}"
            );
        }
    }

    #[test]
    fn non_utf8_header_values_never_panic() {
        let hostile: &[&[u8]] = &[
            b"\xff",
            b"sha256=\xff\xff",
            b"v0=\x80\x81",
            b"v1=\xfe",
            b"1531420618\xff",
            b"\xe2\x80\xa8",
        ];
        for value in hostile {
            for name in [
                "x-hub-signature",
                "x-hub-signature-256",
                "x-slack-request-timestamp",
                "x-slack-signature",
                "x-tributary-timestamp",
                "x-tributary-signature",
            ] {
                let mut map = headers(&[(name, value)]);
                // Fill the other headers with valid-looking values so each one is reached.
                for (other, valid) in [
                    ("x-slack-request-timestamp", &b"1531420618"[..]),
                    ("x-slack-signature", SLACK_SIGNATURE.as_bytes()),
                    ("x-tributary-timestamp", b"1531420618"),
                    ("x-tributary-signature", b"v1=00"),
                ] {
                    if other != name {
                        map.insert(
                            HeaderName::from_static(other),
                            HeaderValue::from_bytes(valid).unwrap(),
                        );
                    }
                }
                for scheme in [
                    WebhookScheme::Jira,
                    WebhookScheme::Github,
                    WebhookScheme::Slack,
                    WebhookScheme::Generic,
                ] {
                    let result = verify(scheme, b"k", &map, b"body", SLACK_TIMESTAMP);
                    assert!(result.is_err(), "{scheme:?} {name} {value:?}");
                }
                let err =
                    verify_jira(b"k", &headers(&[("x-hub-signature", value)]), b"").unwrap_err();
                assert_eq!(err, SignatureError::Malformed("X-Hub-Signature"));
            }
        }
    }

    #[test]
    fn scheme_names_and_error_messages() {
        for (scheme, name) in [
            (WebhookScheme::Jira, "jira"),
            (WebhookScheme::Github, "github"),
            (WebhookScheme::Slack, "slack"),
            (WebhookScheme::Generic, "generic"),
        ] {
            assert_eq!(serde_json::to_value(scheme).unwrap(), name);
            assert_eq!(
                serde_json::from_value::<WebhookScheme>(name.into()).unwrap(),
                scheme
            );
        }
        assert!(serde_json::from_value::<WebhookScheme>("GitHub".into()).is_err());
        assert_eq!(
            SignatureError::Missing("X-Hub-Signature").to_string(),
            "missing X-Hub-Signature header"
        );
        assert_eq!(
            SignatureError::Stale.to_string(),
            "signature timestamp is outside the allowed window"
        );
    }

    #[test]
    fn deliveries_are_keyed_by_the_providers_id_else_by_the_body() {
        let jira = headers(&[("x-atlassian-webhook-identifier", b"a1b2")]);
        let github = headers(&[("x-github-delivery", b"a1b2")]);
        let key = |scheme, headers: &HeaderMap, body: &[u8]| delivery_key(scheme, headers, body);
        // The id wins over the body: a retry of one delivery is the same delivery.
        assert_eq!(
            key(WebhookScheme::Jira, &jira, b"one"),
            key(WebhookScheme::Jira, &jira, b"two")
        );
        assert_eq!(
            key(WebhookScheme::Github, &github, b"x"),
            key(WebhookScheme::Jira, &jira, b"y")
        );
        let bare = HeaderMap::new();
        assert_eq!(
            key(WebhookScheme::Jira, &bare, b"one"),
            key(WebhookScheme::Jira, &bare, b"one")
        );
        assert_ne!(
            key(WebhookScheme::Jira, &bare, b"one"),
            key(WebhookScheme::Jira, &bare, b"two")
        );
        // Timestamped schemes expire by themselves.
        assert_eq!(key(WebhookScheme::Slack, &jira, b"one"), None);
        assert_eq!(key(WebhookScheme::Generic, &jira, b"one"), None);
    }
}
