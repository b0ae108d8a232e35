"""A stem cell: the Python runtime started before it knows its function.

It asks the worker for its assignment (the function's environment and working
dir) on `GET /lambent/stem-cell/assignment` at the Runtime API endpoint, takes
it on, then runs the ordinary runtime (bootstrap.py) in this same process.

    /usr/bin/python3 stem.py [--runtime-api-socket=/path.sock] [--tcp-relay=PORT:SOCKET ...]
"""

import json
import os
import socket
import sys


def fetch_assignment():
    socket_path = None
    for arg in sys.argv[1:]:
        if arg.startswith("--runtime-api-socket="):
            socket_path = arg[len("--runtime-api-socket=") :]
    if socket_path:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(socket_path)
    else:
        host, _, port = os.environ.get("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001").rpartition(":")
        conn = socket.create_connection((host, int(port)))
    conn.sendall(b"GET /lambent/stem-cell/assignment HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    conn.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError("assignment answered " + status.decode())
    return json.loads(body)


def load_runtime():
    """Import bootstrap.py now (under a private name), while nothing waits; its main() runs later."""
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("_lambent_runtime", os.path.join(here, "bootstrap.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    runtime = load_runtime()
    # 127.0.0.1:9001 / :9000 are served from the cell's first moment, as the runtime's own would be.
    runtime.start_relays(sys.argv[1:])
    try:
        assignment = fetch_assignment()
    except Exception as e:  # noqa: BLE001 - any failure means this cell is useless
        sys.stderr.write("lambent stem cell: no assignment: %s\n" % e)
        sys.exit(1)
    os.environ.clear()
    os.environ.update(assignment["env"])
    os.chdir(assignment["cwd"])
    if assignment.get("optRoot"):
        sys.argv.append("--opt-root=" + assignment["optRoot"])
    runtime.main()


if __name__ == "__main__":
    main()
