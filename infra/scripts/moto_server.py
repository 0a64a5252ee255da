"""Run moto server on a free loopback port for Tributary's tests.

Prints `PORT <n>` once it listens. It stops when its standard input closes, so a test
process that spawned it with a pipe takes it down just by exiting; `--until-killed`
keeps it up for a shell script that stops it with a signal instead.
"""

import functools
import signal
import socket
import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer
from moto.sqs.models import Queue


def serialize_moto() -> None:
    """Give moto the isolation the real services guarantee, which its threaded server lacks.

    moto's TransactWriteItems checks conditions and writes without a lock and, when any
    condition fails, restores a deep copy of the whole table taken when it began: two
    concurrent transactions at one item version can both succeed (a lost update), and a
    failed one wipes writes other requests committed meanwhile (a page counted and marked
    done reverts to queued). One lock around every DynamoDB request makes each request,
    transactions included, atomic and serializable, as DynamoDB is. No DynamoDB action
    blocks, so nothing waits on the lock for long.

    SQS: DeleteMessage rebuilds the queue's message list outside the queue's lock, so a
    message sent concurrently to the same queue can vanish; it takes that lock now.
    """
    dynamodb_lock = threading.Lock()
    call_action = DynamoHandler.call_action

    @functools.wraps(call_action)
    def serialized_call_action(self):  # type: ignore[no-untyped-def]
        with dynamodb_lock:
            return call_action(self)

    DynamoHandler.call_action = serialized_call_action

    delete_message = Queue.delete_message

    @functools.wraps(delete_message)
    def locked_delete_message(self, receipt_handle):  # type: ignore[no-untyped-def]
        with self._messages_lock:
            return delete_message(self, receipt_handle)

    Queue.delete_message = locked_delete_message


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    serialize_moto()
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
