"""Cold-start figures for a Lambda binary: time from process start until it asks the
Runtime API for its first event, and its RSS at that moment.

A minimal Runtime API on loopback answers nothing; the clock stops when the binary's
first `GET /2018-06-01/runtime/invocation/next` arrives, which is the instant a Lambda
function is ready for its first event.

    python3 infra/scripts/bench_init.py target/release/token-check [runs]
"""

import http.server
import os
import statistics
import subprocess
import sys
import threading
import time


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    ready = threading.Event()
    ready_at = 0.0

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path.endswith("/runtime/invocation/next"):
            RuntimeApi.ready_at = time.perf_counter()
            RuntimeApi.ready.set()
        # Hold the long poll open; the process is killed once measured.
        time.sleep(2)

    def log_message(self, *args):
        pass


def measure(binary: str, port: int) -> tuple[float, int, int]:
    RuntimeApi.ready.clear()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "token-check",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "AKIDBENCHMARK",
        "AWS_SECRET_ACCESS_KEY": "bench-secret",
        "AWS_SESSION_TOKEN": "bench-session",
        "TRIBUTARY_STORE": "dynamodb",
        "TRIBUTARY_TABLE_NAME": "tributary-bench",
        "TRIBUTARY_JWT_SECRET": "bench-signing-key-4f1c2b3a5d6e7f8091a2b3c4d5e6f708",
    }
    started = time.perf_counter()
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not RuntimeApi.ready.wait(10):
            raise SystemExit(f"{binary} never asked for an event")
        init_ms = (RuntimeApi.ready_at - started) * 1000
        rss, hwm = rss_kib(process.pid)
        return init_ms, rss, hwm
    finally:
        process.kill()
        process.wait()


def main() -> None:
    binary = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    results = [measure(binary, port) for _ in range(runs)]
    server.shutdown()
    inits = sorted(r[0] for r in results)
    print(f"binary: {binary} ({os.path.getsize(binary) / 1e6:.2f} MB)")
    print(f"init to first event request, {runs} runs: p50 {statistics.median(inits):.2f} ms, "
          f"min {inits[0]:.2f} ms, max {inits[-1]:.2f} ms")
    print(f"RSS when ready: p50 {statistics.median(r[1] for r in results) / 1024:.1f} MiB "
          f"(peak {max(r[2] for r in results) / 1024:.1f} MiB)")


if __name__ == "__main__":
    main()
