//! `LocalServe`: the real `tributary-local serve` binary as a child process, what a new user
//! runs, over a fresh data directory, killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const START_TIMEOUT: Duration = Duration::from_secs(30);
const READY_LINE: &str = "tributary-local listening on ";

/// `target/<profile>/tributary-local`, beside the test binary's `deps/` folder (built by
/// `cargo test --workspace`, or `cargo build -p tributary-local`).
pub fn local_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let binary = dir.join(format!("tributary-local{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p tributary-local` first",
        binary.display()
    );
    binary
}

pub struct LocalServe {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    pub data_dir: PathBuf,
    _child: Child,
}

impl LocalServe {
    /// `serve --addr <addr>` with private networks allowed (the tests' sites and fakes are on
    /// loopback) and `env` added; waits until it says where it listens.
    pub async fn start(addr: &str, env: &[(&str, String)]) -> LocalServe {
        let data_dir = crate::app::temp_dir("local-serve");
        let mut command = Command::new(local_binary());
        command
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--allow-private-networks")
            .args(["serve", "--addr", addr, "--workers", "2"])
            .env("RUST_LOG", "warn")
            .env_remove("TRIBUTARY_JWT_SECRET")
            .env_remove("TRIBUTARY_ENCRYPTION_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start tributary-local serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await.expect("read serve output") {
                if let Some(url) = line.strip_prefix(READY_LINE) {
                    return url.trim().to_owned();
                }
            }
            panic!("tributary-local serve exited before listening");
        })
        .await
        .expect("tributary-local serve did not start in time");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        LocalServe {
            url,
            data_dir,
            _child: child,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }
}

/// A free loopback port (for a server whose URL must be known before it starts, such as a
/// redirect URI registered at an OpenID provider).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}
