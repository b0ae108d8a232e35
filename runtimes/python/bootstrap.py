"""Lambent's built-in Python runtime.

A plain program that speaks only Lambda's public Runtime API (2018-06-01), so it behaves like the
`python3.x` managed runtimes: run as `/usr/bin/python3 bootstrap.py [--runtime-api-socket=/path.sock]`
with cwd = LAMBDA_TASK_ROOT and Lambda's environment (AWS_LAMBDA_RUNTIME_API, _HANDLER, ...). With
--runtime-api-socket it talks HTTP over that Unix socket, else TCP to AWS_LAMBDA_RUNTIME_API. Each
--tcp-relay=PORT:SOCKET makes it serve 127.0.0.1:PORT itself, relayed to SOCKET (see start_relays).

Behaviour follows AWS's awslambdaric: handler resolution, the context object, error bodies
({errorMessage, errorType, requestId, stackTrace}), Runtime.* error types, the logging format and
unbuffered stdout. Standard library only.

Start-up cost matters (every cold start pays it), so two things are done differently from awslambdaric:
- HTTP/1.1 is spoken directly over one persistent socket: importing http.client costs ~27 ms here,
  the whole runtime ~20 ms.
- The logging module (~13 ms to import) is configured when user code first imports it, through an
  import hook, instead of being imported up front.

Multi-concurrency (Lambda Managed Instances): with AWS_LAMBDA_MAX_CONCURRENCY=N > 1 the runtime runs
N processes, as Lambda's Python runtime does: each does its own Init and handles one event at a time
over its own connection. If one of them exits, the runtime exits with it (the environment is replaced).
"""

import json
import os
import socket
import sys
import time

API = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"


# ------------------------------------------------------------------ transport


class RuntimeAPIClient:
    """HTTP/1.1 over one keep-alive connection (TCP or a Unix socket)."""

    def __init__(self, address, socket_path):
        self.socket_path = socket_path
        if socket_path:
            self.host_header = "localhost"
        else:
            host, _, port = address.rpartition(":")
            self.address = (host.strip("[]"), int(port))
            self.host_header = address
        self.sock = None
        self.rfile = None

    def _connect(self):
        if self.socket_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.socket_path)
        else:
            sock = socket.create_connection(self.address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self):
        if self.sock is not None:
            try:
                self.rfile.close()
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.rfile = None

    def request(self, method, path, body=b"", headers=None):
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (
            method,
            path,
            self.host_header,
            len(body),
        )
        if body:
            head += "Content-Type: application/json\r\n"
        if headers:
            for name, value in headers.items():
                head += "%s: %s\r\n" % (name, value)
        data = head.encode("latin-1") + b"\r\n" + body
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                self.sock.sendall(data)
                return self._read_response()
            except (ConnectionError, EOFError):
                # The server closed the idle keep-alive connection: reconnect once.
                self.close()
                if attempt:
                    raise

    def _read_response(self):
        rfile = self.rfile
        line = rfile.readline(65537)
        if not line:
            raise EOFError("Runtime API closed the connection")
        status = int(line.split(None, 2)[1])
        headers = {}
        while True:
            line = rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(rfile.readline(65537).split(b";", 1)[0], 16)
                if size == 0:
                    while rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(rfile.read(size))
                rfile.readline(65537)
            body = b"".join(parts)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body = rfile.read(length)
            if len(body) < length:
                raise EOFError("Runtime API closed the connection mid-body")
        else:
            body = rfile.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def next(self):
        status, headers, body = self.request("GET", API + "/invocation/next")
        if status != 200:
            raise RuntimeError("GET next answered %d: %r" % (status, body[:500]))
        return headers, body

    def post(self, path, body, error_type=None):
        headers = {ERROR_TYPE_HEADER: error_type} if error_type else None
        status, _, answer = self.request("POST", path, body, headers)
        if status >= 300:
            sys.stderr.write("lambent runtime: POST %s answered %d: %r\n" % (path, status, answer[:500]))


# ------------------------------------------------------------------ relays

_relays_started = False


def start_relays(argv):
    """`--tcp-relay=PORT:SOCKET`: this process serves 127.0.0.1:PORT of the sandbox's own network (the
    Runtime API at 9001 for code and custom clients, the platform API at 9000), each connection
    carried both ways to the Unix socket SOCKET, so the sandbox needs no relay process for it.

    The ports are bound here, before any user code is imported; one thread serves every connection
    (epoll). Each direction ends on its own (half-close carried, as socat does); at most 64 KiB of a
    direction waits in this process, and its source is not read until that is written (a client that
    never reads holds the other side back, not this process's memory). A failing connection is
    closed alone; a port that cannot be served is reported, and the runtime goes on (it talks to
    its own Unix socket). Called again (the stem cell starts them, its runtime's main() asks again):
    nothing more happens."""
    global _relays_started
    if _relays_started:
        return
    _relays_started = True
    specs = dict.fromkeys(arg[12:] for arg in argv if arg.startswith("--tcp-relay="))
    if not specs:
        return
    import _thread
    import select

    poller = select.epoll()
    listeners = {}
    for spec in specs:
        port, _, target = spec.partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", int(port)))
            sock.listen(511)
            sock.setblocking(False)
        except (OSError, ValueError, OverflowError) as e:
            sock.close()
            sys.stderr.write("lambent runtime: cannot serve 127.0.0.1:%s: %s\n" % (port, e))
            continue
        listeners[sock.fileno()] = (sock, target)
    if not listeners:
        poller.close()
        return
    relay = _RelayLoop(poller, listeners)
    # A forked process (AWS_LAMBDA_MAX_CONCURRENCY, or os.fork in user code) has no relay thread: it
    # lets go of the relay's descriptors, so a connection ends when this process closes it.
    os.register_at_fork(after_in_child=relay.release)
    _thread.start_new_thread(relay.run, ())


class _RelayLoop:
    """The relay thread: accepts on the listening sockets and moves bytes for every connection."""

    CHUNK = 65536

    def __init__(self, poller, listeners):
        import errno
        import select

        self.poller = poller
        self.listeners = listeners  # fd -> (listening socket, Unix socket path)
        self.conns = {}  # fd -> (_RelayedConnection, side)
        self.paused = []  # listeners not accepting until descriptors are free again
        self.no_fds = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
        self.IN, self.OUT = select.EPOLLIN, select.EPOLLOUT
        self.DONE = select.EPOLLERR | select.EPOLLHUP
        for fd in listeners:
            poller.register(fd, self.IN)

    def run(self):
        poller = self.poller
        while True:
            # Out of descriptors: a closing connection frees some; otherwise try again in a second.
            events = poller.poll(1.0 if self.paused else -1)
            if self.paused and not events:
                self.resume()
            for fd, mask in events:
                try:
                    if fd in self.listeners:
                        self.accept(fd)
                    else:
                        entry = self.conns.get(fd)
                        if entry is not None:  # else closed earlier in this batch
                            entry[0].on_event(entry[1], mask)
                except Exception as e:  # noqa: BLE001 - one connection's trouble never ends the relay
                    sys.stderr.write("lambent runtime: relay: %r\n" % (e,))

    def accept(self, fd):
        listener, target = self.listeners[fd]
        while True:
            upstream = None
            try:
                client, _ = listener.accept()
            except BlockingIOError:
                return
            except OSError as e:
                if e.errno in self.no_fds:
                    self.pause(fd)
                return
            try:
                client.setblocking(False)
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.setblocking(False)
                upstream.connect(target)
            except OSError as e:
                # The target is gone or its backlog is full: this client is refused, the next is tried.
                client.close()
                if upstream is not None:
                    upstream.close()
                if e.errno in self.no_fds:
                    self.pause(fd)
                    return
                continue
            _RelayedConnection(self, client, upstream)

    def pause(self, fd):
        self.poller.unregister(fd)
        self.paused.append(fd)

    def resume(self):
        for fd in self.paused:
            self.poller.register(fd, self.IN)
        self.paused = []

    def release(self):
        """In a forked child: close every descriptor of the relay (its thread did not come along)."""
        for sock, _ in self.listeners.values():
            sock.close()
        for conn, _ in list(self.conns.values()):
            for sock in conn.socks:
                sock.close()
        self.listeners, self.conns, self.paused = {}, {}, []
        self.poller.close()


class _RelayedConnection:
    """A relayed connection: socks[0] the TCP client, socks[1] the Unix socket. pending[i] holds what
    was read from socks[i] and not yet written to the other; ended[i]: socks[i] sent its end;
    shut[i]: socks[i]'s sending side is shut down. Done when both directions are."""

    __slots__ = ("loop", "socks", "fds", "pending", "ended", "shut", "masks")

    def __init__(self, loop, client, upstream):
        self.loop = loop
        self.socks = (client, upstream)
        self.fds = (client.fileno(), upstream.fileno())
        self.pending = [b"", b""]
        self.ended = [False, False]
        self.shut = [False, False]
        self.masks = [0, 0]
        loop.conns[self.fds[0]] = (self, 0)
        loop.conns[self.fds[1]] = (self, 1)
        try:
            self.watch()
        except OSError:
            self.close()

    def on_event(self, side, mask):
        loop = self.loop
        try:
            try:
                if self.pending[1 - side] and mask & (loop.OUT | loop.DONE):
                    self.flush(1 - side)
                if not (self.ended[side] or self.pending[side]) and mask & (loop.IN | loop.DONE):
                    self.read(side)
            except BlockingIOError:
                pass
            self.watch()
        except OSError:  # reset, broken pipe, epoll out of room: both sides end
            self.close()

    def read(self, side):
        data = self.socks[side].recv(_RelayLoop.CHUNK)
        if not data:
            self.ended[side] = True
            self.shutdown(1 - side)
            return
        try:
            sent = self.socks[1 - side].send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            self.pending[side] = data[sent:]

    def flush(self, side):
        data = self.pending[side]
        sent = self.socks[1 - side].send(data)
        self.pending[side] = data[sent:]
        if not self.pending[side] and self.ended[side]:
            self.shutdown(1 - side)

    def shutdown(self, side):
        self.shut[side] = True
        self.socks[side].shutdown(socket.SHUT_WR)

    def watch(self):
        """Ask epoll for what each side waits for now (nothing: not registered, so a hung-up socket
        does not wake the loop)."""
        if self.shut[0] and self.shut[1]:
            self.close()
            return
        loop = self.loop
        for side in (0, 1):
            want = 0 if self.ended[side] or self.pending[side] else loop.IN
            if self.pending[1 - side]:
                want |= loop.OUT
            had = self.masks[side]
            if want != had:
                fd = self.fds[side]
                if not had:
                    loop.poller.register(fd, want)
                elif not want:
                    loop.poller.unregister(fd)
                else:
                    loop.poller.modify(fd, want)
                self.masks[side] = want

    def close(self):
        loop = self.loop
        for side in (0, 1):
            fd = self.fds[side]
            if self.masks[side]:
                loop.poller.unregister(fd)
                self.masks[side] = 0
            if loop.conns.get(fd, (None,))[0] is self:
                del loop.conns[fd]
            self.socks[side].close()
        self.shut = [True, True]
        if loop.paused:
            loop.resume()


# ------------------------------------------------------------------ logging

_request_id = None  # the invoke in flight, for log lines


class _Unbuffered:
    """stdout / stderr that reach the platform at once (awslambdaric does the same)."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, lines):
        self.stream.writelines(lines)
        self.stream.flush()


def _json_logs():
    return (os.environ.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"


def _iso_now(created=None):
    t = time.time() if created is None else created
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


_RECORD_FIELDS = {
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module", "exc_info",
    "exc_text", "stack_info", "lineno", "funcName", "created", "msecs", "relativeCreated", "thread",
    "threadName", "processName", "process", "aws_request_id", "taskName",
}


def _JsonFormatter():
    """Lambda's JSON log record: timestamp, level, message, logger, requestId (+ error fields, extras)."""
    import logging
    import traceback

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            level = min(50, max(0, record.levelno)) // 10 * 10
            out = {
                "timestamp": _iso_now(record.created),
                "level": logging.getLevelName(level),
                "message": record.getMessage(),
                "logger": record.name,
                "requestId": getattr(record, "aws_request_id", None) or None,
            }
            if record.exc_info:
                out["stackTrace"] = traceback.format_tb(record.exc_info[2])
                out["errorType"] = record.exc_info[0].__name__
                out["errorMessage"] = str(record.exc_info[1])
                out["location"] = "%s:%s:%s" % (record.pathname, record.funcName, record.lineno)
            for key, value in record.__dict__.items():
                if key not in _RECORD_FIELDS and key not in out:
                    out[key] = value
            return json.dumps({k: v for k, v in out.items() if v is not None}, default=str, ensure_ascii=False)

    return JsonFormatter()


def _configure_logging(logging):
    """Lambda's root handler: `[LEVEL]\\t<UTC time>Z\\t<requestId>\\t<message>` on stdout."""
    logging.Formatter.converter = time.gmtime

    class LambdaLoggerHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
                if "\n" in msg:  # one record, one line
                    msg = msg.replace("\n", "\r")
                sys.stdout.write(msg + "\n")
            except Exception:
                self.handleError(record)

    class LambdaLoggerFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _request_id or ""
            return True

    handler = LambdaLoggerHandler()
    if _json_logs():
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(LambdaLoggerFilter())
    root = logging.getLogger()
    level = (os.environ.get("AWS_LAMBDA_LOG_LEVEL") or "").upper()
    if level in ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR", "FATAL", "CRITICAL"):
        root.setLevel({"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}.get(level, level))
    root.addHandler(handler)


class _LoggingImportHook:
    """Configures `logging` right after user code first imports it."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_configure(module):
            exec_module(module)
            _configure_logging(module)

        loader.exec_module = exec_and_configure
        return spec


def _install_logging():
    if "logging" in sys.modules:
        _configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, _LoggingImportHook())


def _replace_indent(line):
    stripped = line.lstrip(" ")
    return "\u00a0" * (len(line) - len(stripped)) + stripped


def _log_error(error):
    """The `[ERROR] Type: message\\rTraceback ...` line Lambda writes for a failed invoke or init."""
    text = "[ERROR]"
    if error["errorType"]:
        text += " " + error["errorType"]
    if error["errorMessage"]:
        text += (":" if error["errorType"] else "") + " " + error["errorMessage"]
    if _json_logs():
        record = {"timestamp": _iso_now(), "level": "ERROR"}
        record.update((k, error[k]) for k in ("errorMessage", "errorType", "requestId", "stackTrace") if error.get(k) is not None)
        sys.stdout.write(json.dumps(record) + "\n")
        return
    lines = [text]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for element in error["stackTrace"]:
            if element == "":
                lines.append("")
            else:
                lines.extend(_replace_indent(piece) for piece in element.splitlines())
    sys.stdout.write("\r".join(lines).replace("\n", "\r") + "\n")


# ------------------------------------------------------------------ errors


class FaultException(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace


def _make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message or "",
        "errorType": error_type or "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace or [],
    }


def _user_traceback(tb):
    """traceback.format_list of the user's frames (the runtime's own frames dropped)."""
    import traceback

    frames = traceback.extract_tb(tb)
    this_file = __file__
    for i, frame in enumerate(frames):
        if frame.filename != this_file:
            frames = frames[i:]
            break
    return traceback.format_list(frames)


# ------------------------------------------------------------------ loading the handler


def _load_handler(handler):
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException("Runtime.MalformedHandlerName", "Bad handler '%s': %s" % (handler, e))
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                "Runtime.BuiltInModuleConflict",
                "Cannot use built-in module %s as a handler module" % modname,
            )
        import importlib

        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modname, e)
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            "Runtime.UserCodeSyntaxError", "Syntax error in module '%s': %s" % (modname, e), trace
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s'" % (fname, modname)
        )


# ------------------------------------------------------------------ context


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __repr__(self):
        return "CognitoIdentity([cognito_identity_id=%s,cognito_identity_pool_id=%s])" % (
            self.cognito_identity_id,
            self.cognito_identity_pool_id,
        )


class Client:
    __slots__ = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")


class ClientContext:
    __slots__ = ("custom", "env", "client")


def _from_dict(cls, data):
    if data is None:
        return None
    obj = cls()
    for field in cls.__slots__:
        setattr(obj, field, data.get(field))
    return obj


class LambdaContext:
    def __init__(self, request_id, client_context, identity, deadline_ms, invoked_function_arn):
        env = os.environ
        self.aws_request_id = request_id
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context = _from_dict(ClientContext, client_context)
        if self.client_context is not None:
            self.client_context.client = _from_dict(Client, self.client_context.client)
        self.identity = _from_dict(CognitoIdentity, {})
        if identity is not None:
            self.identity.cognito_identity_id = identity.get("cognitoIdentityId")
            self.identity.cognito_identity_pool_id = identity.get("cognitoIdentityPoolId")
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        remaining = self._deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            "LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,function_name=%s,"
            "memory_limit_in_mb=%s,function_version=%s,invoked_function_arn=%s,client_context=%s,"
            "identity=%s])"
            % (
                self.aws_request_id,
                self.log_group_name,
                self.log_stream_name,
                self.function_name,
                self.memory_limit_in_mb,
                self.function_version,
                self.invoked_function_arn,
                self.client_context,
                self.identity,
            )
        )


def _parse_json_header(value, name):
    if not value:
        return None
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            "Runtime.LambdaContextUnmarshalError", "Unable to parse %s JSON: %s" % (name, e)
        )


def _json_default(obj):
    import decimal

    if isinstance(obj, decimal.Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    raise TypeError("Object of type %s is not JSON serializable" % type(obj).__name__)


# ------------------------------------------------------------------ the invoke loop


def _handle(client, handler, headers, body):
    global _request_id
    request_id = headers.get("lambda-runtime-aws-request-id")
    _request_id = request_id
    trace_id = headers.get("lambda-runtime-trace-id")
    if trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    error = None
    try:
        context = LambdaContext(
            request_id,
            _parse_json_header(headers.get("lambda-runtime-client-context"), "Client Context"),
            _parse_json_header(headers.get("lambda-runtime-cognito-identity"), "Cognito Identity"),
            int(headers.get("lambda-runtime-deadline-ms") or 0),
            headers.get("lambda-runtime-invoked-function-arn"),
        )
        content_type = headers.get("content-type", "application/json")
        if content_type.startswith("application/json"):
            try:
                event = json.loads(body)
            except Exception as e:
                raise FaultException("Runtime.UnmarshalError", "Unable to unmarshal input: %s" % e)
        else:
            event = body
        result = handler(event, context)
        if isinstance(result, bytes):
            payload = result
        else:
            try:
                payload = json.dumps(result, default=_json_default).encode()
            except Exception as e:
                raise FaultException("Runtime.MarshalError", "Unable to marshal response: %s" % e)
    except FaultException as e:
        error = _make_error(e.message, e.error_type, e.trace, request_id)
    except Exception as e:
        error = _make_error(str(e), type(e).__name__, _user_traceback(e.__traceback__), request_id)

    path = "%s/invocation/%s/" % (API, request_id)
    if error is None:
        client.post(path + "response", payload)
    else:
        _log_error(error)
        client.post(path + "error", json.dumps(error).encode(), error["errorType"])


def _function_path(task_root, opt_root, sdk_root):
    """sys.path as Lambda's: the task root, the layers' /opt/python, the standard library, PYTHONPATH,
    then the runtime's SDK (boto3). Nothing else of the interpreter's installation (no host
    dist-packages / site-packages): a function sees the packages it brings and what the runtime ships."""
    version = "python%d.%d" % sys.version_info[:2]
    path = [task_root]
    if os.path.isdir(opt_root + "/python"):
        path += ["%s/python/lib/%s/site-packages" % (opt_root, version), opt_root + "/python"]
    stdlib = os.path.join(sys.base_prefix, "lib")
    for entry in sys.path[1:]:
        if entry.startswith(stdlib + os.sep) and "-packages" not in entry:
            path.append(entry)
    for entry in (os.environ.get("PYTHONPATH") or "").split(os.pathsep):
        if entry and entry not in path:
            path.append(entry)
    if sdk_root and sdk_root not in path:
        path.append(sdk_root)
    return path


def _start_processes(n):
    """Fork n - 1 more runtime processes (before Init: each loads the handler itself). The first
    process watches the others: when one exits, it exits too, with that status."""
    import signal
    import warnings

    for started in range(1, n):
        try:
            # The relay thread (start_relays) is no concern of the child: it closes the relay's
            # descriptors at once; Python >= 3.12 would warn of forking a threaded process.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
        except OSError as e:  # the sandbox's process limit: run with the processes there are
            sys.stderr.write("lambent runtime: %d of %d processes started: %s\n" % (started, n, e))
            break
        if pid == 0:
            try:  # die with the first process (Linux prctl PR_SET_PDEATHSIG)
                import ctypes

                ctypes.CDLL(None).prctl(1, signal.SIGKILL)
            except Exception:  # noqa: BLE001 - best effort; the sandbox's teardown kills us anyway
                pass
            if os.getppid() == 1:
                os._exit(1)
            return

    def on_child_exit(_signum, _frame):
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            code = os.waitstatus_to_exitcode(status)
            os._exit(code if code > 0 else (128 - code if code < 0 else 1))

    signal.signal(signal.SIGCHLD, on_child_exit)


def main():
    socket_path = None
    opt_root = "/opt"
    sdk_root = None
    argv = sys.argv[1:]
    start_relays(argv)
    for i, arg in enumerate(argv):
        if arg.startswith("--opt-root="):
            opt_root = arg.split("=", 1)[1]
        elif arg.startswith("--sdk-root="):
            sdk_root = arg.split("=", 1)[1]
        elif arg.startswith("--runtime-api-socket="):
            socket_path = arg.split("=", 1)[1]
        elif arg == "--runtime-api-socket" and i + 1 < len(argv):
            socket_path = argv[i + 1]

    env = os.environ
    task_root = env.get("LAMBDA_TASK_ROOT") or os.getcwd()
    sys.path[:] = _function_path(task_root, opt_root, sdk_root)

    sys.stdout = _Unbuffered(sys.stdout)
    sys.stderr = _Unbuffered(sys.stderr)
    _install_logging()

    try:
        processes = max(1, int(env.get("AWS_LAMBDA_MAX_CONCURRENCY") or "1"))
    except ValueError:
        processes = 1
    if processes > 1:
        _start_processes(processes)

    client = RuntimeAPIClient(env.get("AWS_LAMBDA_RUNTIME_API") or "127.0.0.1:9001", socket_path)
    try:
        handler = _load_handler(env.get("_HANDLER") or "")
    except FaultException as e:
        error = _make_error(e.message, e.error_type, e.trace)
    except Exception as e:
        error = _make_error(str(e), type(e).__name__, _user_traceback(e.__traceback__))
    else:
        error = None
    if error is not None:
        _log_error(error)
        client.post(API + "/init/error", json.dumps(error).encode(), error["errorType"])
        sys.exit(1)

    while True:
        headers, body = client.next()
        _handle(client, handler, headers, body)


if __name__ == "__main__":
    main()
