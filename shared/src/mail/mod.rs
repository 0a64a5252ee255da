//! Outgoing mail (email verification links), behind [`Mailer`]: the dev outbox writes each
//! message to a file locally, the log sender only notes that a message was due, and SES
//! delivers in AWS (feature `ses`). Message bodies carry one-time links: no sender logs a
//! body above `debug`.

#[cfg(feature = "ses")]
pub mod ses;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

pub const PUBLIC_URL: &str = "TRIBUTARY_PUBLIC_URL";
pub const MAIL_FROM: &str = "TRIBUTARY_MAIL_FROM";
/// Where links in mails point when `TRIBUTARY_PUBLIC_URL` is not set (tributary-local).
pub const DEFAULT_LOCAL_PUBLIC_URL: &str = "http://127.0.0.1:3000";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("cannot write the message to {path}: {reason}")]
    Outbox { path: PathBuf, reason: String },
    #[error("the mail service refused the message: {0}")]
    Delivery(String),
    #[error("{name} is invalid: {reason}")]
    Config { name: &'static str, reason: String },
}

/// A plain-text message to one recipient.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// The body is left out: it holds one-time links.
impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &"[redacted]")
            .finish()
    }
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &Message) -> Result<(), MailError>;
}

/// Notes that a message was due without delivering it (functions that never send mail,
/// and tests that do not read it). The body only at `debug`.
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        tracing::info!(subject = %message.subject, "no mail sender configured; message not delivered");
        tracing::debug!(text = %message.text, "undelivered message body");
        Ok(())
    }
}

/// The dev outbox: each message becomes `<dir>/<time>-<id>.eml`, whose path is logged.
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The outbox's messages, oldest first (for tests and the CLI).
    pub fn messages(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|entry| entry.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| std::fs::read_to_string(&path).ok().map(|text| (path, text)))
            .collect()
    }
}

/// RFC 5322-ish text: enough for a mail client or a test to read.
fn eml(message: &Message) -> String {
    let date = chrono::Utc::now().to_rfc2822();
    format!(
        "To: {}\r\nSubject: {}\r\nDate: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}",
        message.to.replace(['\r', '\n'], ""),
        message.subject.replace(['\r', '\n'], " "),
        message.text
    )
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, message: &Message) -> Result<(), MailError> {
        let failed = |path: &Path, error: std::io::Error| MailError::Outbox {
            path: path.to_owned(),
            reason: error.to_string(),
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| failed(&self.dir, e))?;
        // Time first so a directory listing sorts oldest first; the UUIDv7 keeps it unique.
        let name = format!(
            "{}-{}.eml",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            uuid::Uuid::now_v7().simple()
        );
        let path = self.dir.join(name);
        std::fs::write(&path, eml(message)).map_err(|e| failed(&path, e))?;
        tracing::info!(path = %path.display(), subject = %message.subject, "mail written to the dev outbox");
        Ok(())
    }
}

/// What the mail-sending routes need: the sender and the public base URL links point at.
#[derive(Clone)]
pub struct Mail {
    pub mailer: Arc<dyn Mailer>,
    /// `scheme://host[:port][/prefix]`, no trailing slash.
    pub public_url: String,
}

impl Default for Mail {
    fn default() -> Self {
        Self {
            mailer: Arc::new(LogMailer),
            public_url: DEFAULT_LOCAL_PUBLIC_URL.into(),
        }
    }
}

impl Mail {
    pub fn new(mailer: Arc<dyn Mailer>, public_url: &str) -> Result<Self, MailError> {
        Ok(Self {
            mailer,
            public_url: check_public_url(public_url)?,
        })
    }

    /// `<public url><path>`; `path` starts with `/`.
    pub fn link(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }
}

/// An absolute http(s) URL without query, fragment or credentials, trailing `/` dropped.
pub fn check_public_url(raw: &str) -> Result<String, MailError> {
    let invalid = |reason: &str| MailError::Config {
        name: PUBLIC_URL,
        reason: format!("`{raw}` {reason}"),
    };
    let trimmed = raw.trim().trim_end_matches('/');
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(invalid("is not an absolute URL"));
    };
    if scheme != "https" && scheme != "http" {
        return Err(invalid("must be http or https"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || rest.contains(['?', '#', '@', ' ']) {
        return Err(invalid(
            "needs a host and no query, fragment or credentials",
        ));
    }
    Ok(trimmed.to_owned())
}

/// A plausible single address for the `From:` header (validated at cold start).
pub fn check_from_address(raw: &str) -> Result<String, MailError> {
    let address = raw.trim();
    let ok = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && domain.contains('.') && !domain.contains('@')
    }) && !address.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(address.to_owned())
    } else {
        Err(MailError::Config {
            name: MAIL_FROM,
            reason: format!("`{address}` is not an email address"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls() {
        assert_eq!(
            check_public_url("https://api.example.com/").unwrap(),
            "https://api.example.com"
        );
        assert_eq!(
            check_public_url("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
        for bad in [
            "",
            "/relative",
            "ftp://x",
            "https://",
            "https://a@b",
            "https://x/?q",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn from_addresses() {
        assert!(check_from_address("no-reply@example.com").is_ok());
        for bad in ["", "nobody", "a b@example.com", "x@localhost"] {
            assert!(check_from_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_debug_hides_the_body() {
        let message = Message {
            to: "a@example.com".into(),
            subject: "s".into(),
            text: "secret-link".into(),
        };
        assert!(!format!("{message:?}").contains("secret-link"));
    }

    #[tokio::test]
    async fn the_outbox_writes_one_file_per_message() {
        let dir = std::env::temp_dir().join(format!("outbox-{}", uuid::Uuid::now_v7()));
        let outbox = OutboxMailer::new(&dir);
        for n in 0..2 {
            let message = Message {
                to: "a@example.com".into(),
                subject: format!("hello {n}"),
                text: format!("body {n}"),
            };
            outbox.send(&message).await.unwrap();
        }
        let messages = OutboxMailer::messages(&dir);
        assert_eq!(messages.len(), 2);
        assert!(messages[0].1.contains("Subject: hello 0") && messages[0].1.ends_with("body 0"));
        assert!(messages[1].1.contains("To: a@example.com"));
        std::fs::remove_dir_all(dir).ok();
    }
}
