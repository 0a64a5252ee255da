//! What the source benchmarks share: the fake in a child process (so its memory is not
//! the connector's), one measuring process per size (VmHWM is a high-water mark), and the
//! peak RSS read from /proc.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Peak resident set size of this process (VmHWM), in KiB; 0 where /proc is absent.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The number after `flag` among the arguments.
pub fn arg_after(args: &[String], flag: &str) -> Option<usize> {
    let position = args.iter().position(|arg| arg == flag)?;
    args.get(position + 1)?.parse().ok()
}

/// The sizes given on the command line, else `default`.
pub fn sizes(args: &[String], default: &[usize]) -> Vec<usize> {
    let sizes: Vec<usize> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        default.to_vec()
    } else {
        sizes
    }
}

/// In the fake's child: prints `base_url`, then serves until the parent closes stdin.
pub async fn serve_until_parent_closes(base_url: &str) {
    println!("{base_url}");
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
}

/// A fake serving in a child process of this benchmark (`<own exe> <serve_flag> <count>`).
pub struct FakeProcess {
    child: Child,
    pub base_url: String,
}

impl FakeProcess {
    pub fn start(serve_flag: &str, count: usize) -> Self {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .args([serve_flag, &count.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the fake");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the fake's address");
        Self {
            child,
            base_url: line.trim().to_owned(),
        }
    }
}

/// Closing its stdin stops the fake.
impl Drop for FakeProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Runs `<own exe> <measure_flag> <size>` once per size, each in its own process.
pub fn measure_each(measure_flag: &str, sizes: &[usize]) {
    for count in sizes {
        let status = Command::new(std::env::current_exe().expect("own path"))
            .args([measure_flag, &count.to_string()])
            .status()
            .expect("run a measurement");
        assert!(status.success(), "measurement at {count} failed");
    }
}
