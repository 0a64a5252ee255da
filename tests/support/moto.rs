//! One moto server per test process, on loopback.
//!
//! `infra/scripts/test` starts moto once and exports `TRIBUTARY_TEST_MOTO_ENDPOINT`; when a
//! developer runs `cargo test` alone, the first test that needs moto starts
//! `infra/scripts/moto_server.py` with a pipe on its stdin, so it exits with this process.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub const ENDPOINT_ENV: &str = "TRIBUTARY_TEST_MOTO_ENDPOINT";

static ENDPOINT: OnceLock<String> = OnceLock::new();
// Keeps the child (and so its stdin pipe) alive for the whole test process.
static CHILD: Mutex<Option<Child>> = Mutex::new(None);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn python() -> PathBuf {
    let venv = workspace_root().join(".tools/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

fn spawn() -> String {
    let script = workspace_root().join("infra/scripts/moto_server.py");
    let mut child = Command::new(python())
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start moto ({e}); run infra/scripts/test once to install it")
        });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read moto's port");
    let port = line.trim().strip_prefix("PORT ").unwrap_or_else(|| {
        panic!("moto did not start (printed {line:?}); is moto[server] installed?")
    });
    *CHILD.lock().expect("moto child lock") = Some(child);
    format!("http://127.0.0.1:{port}")
}

/// The moto endpoint for this test process, starting moto if the test command did not.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| match std::env::var(ENDPOINT_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => spawn(),
    })
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "moto",
        ))
        .load()
        .await
}

pub async fn dynamodb_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&sdk_config().await)
}

pub async fn sqs_client() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&sdk_config().await)
}

pub async fn sesv2_client() -> aws_sdk_sesv2::Client {
    aws_sdk_sesv2::Client::new(&sdk_config().await)
}

/// A mail moto's SES accepted (`SendEmail` with simple content, v1 or v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEmail {
    pub id: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
}

/// Every simple mail moto's SES has accepted since it started, read from moto's state
/// dump (`GET /moto-api/data.json`, its `ses.Message` models): moto delivers nothing, so
/// this is the one place a test can read what was sent.
pub async fn sent_emails() -> Vec<SentEmail> {
    let url = format!("{}/moto-api/data.json", endpoint());
    let response = reqwest::get(&url).await.expect("GET moto-api/data.json");
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    let data: serde_json::Value = response.json().await.expect("moto's data.json is JSON");
    let text = |message: &serde_json::Value, field: &str| {
        message[field].as_str().unwrap_or_default().to_owned()
    };
    data["ses"]["Message"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|message| SentEmail {
            id: text(message, "id"),
            from: text(message, "source"),
            to: message["destinations"]["ToAddresses"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|address| address.as_str().map(str::to_owned))
                .collect(),
            subject: text(message, "subject"),
            body: text(message, "body"),
        })
        .collect()
}

/// A name no other test uses, for a fresh table or queue.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}
