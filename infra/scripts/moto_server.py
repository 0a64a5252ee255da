"""Run moto server on a free loopback port for Tributary's tests.

Prints `PORT <n>` once it listens. It stops when its standard input closes, so a test
process that spawned it with a pipe takes it down just by exiting; `--until-killed`
keeps it up for a shell script that stops it with a signal instead.
"""

import signal
import socket
import sys
import threading

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"PORT {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if "--until-killed" in sys.argv:
        stop.wait()
    else:
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
