#!/usr/bin/env python3
"""The threaded guard (src/guard/guard.py v3 before the asyncio port), kept only to be
measured against the shipped guard: npm run bench -- --guard-py bench/peers/guard-threaded.py.
Not the guard: src/guard/guard.py is.

runpod-llm guard: the only thing listening on a pod's public port.

RunPod's pod URL (https://{podId}-8000.proxy.runpod.net) is public, and vLLM's --api-key guards
only /v1: /invocations, /tokenize, /pause, /update_weights, /metrics, ... stay open. So vLLM
listens on 127.0.0.1:8001 and this proxy on 0.0.0.0:8000 forwards five routes, the /v1 ones only
with the pod's key. Standard library only: it runs on the stock vllm/vllm-openai image.

Decisions, first match wins:
  GET /health                          -> vLLM's /health status (502 while it loads), empty body
  target not an allowed route          -> 404; exact string match, no decoding or normalising,
                                          leaves nothing for two parsers to disagree on; a route's
                                          `{id}` segment matches one segment of [A-Za-z0-9_.-]
                                          (1-200 characters, not "." or "..")
  Authorization != "Bearer <key>"      -> 401 {"error":"Unauthorized"}, as vLLM says it
  ambiguous or broken body framing     -> 400 (CL with TE, two CLs, a bad chunk: request
                                          smuggling's shapes); 501 for a coding but chunked
  body over GUARD_MAX_BODY             -> 413: Content-Length before reading, chunked bodies
                                          counted while read (the proxy in front may re-chunk)
  otherwise                            -> forwarded with a Content-Length; the response streams
                                          back as it arrives (SSE is never buffered)
Over GUARD_MAX_CONNECTIONS open connections -> 503. Log: one line per request (method, path,
status, ms), never headers, bodies or query strings.

Self-stop, for when the manager is away (a laptop closed with the watchdog on it): the manager
renews a lease every watchdog pass (POST /runpod-llm/lease with the key -> 200 and
{"guard":"3","lease_seconds":N|null,"stop_at":T|null,"self_stop":"checking|ok|refused|blocked|
unreachable|missing"}), and so does every authorised request. With GUARD_LEASE_SECONDS set, a
lease not renewed for that long stops the pod through RunPod's API with the pod-scoped key RunPod
puts in every pod's env (RUNPOD_API_KEY, RUNPOD_POD_ID); GUARD_STOP_AT (Unix seconds) stops it at
that time whatever happens. A failed stop is logged and retried every minute; the key is never
logged. At start the guard tests that key read-only (GET its own pod) and says in the lease
answer whether the pod can stop itself (RunPodApi explains the verdicts). With GUARD_LEASE_FILE
the lease's deadline survives a restart of the container: a restarted guard carries it on, and
stops at once if it has passed, so a crash loop never renews its own lease.

`guard.py --stop-self [reason]` stops the pod once and exits (0 stopped, 1 not, 3 no pod env):
the start script's answer to a vLLM that died, instead of RunPod's restart loop.

Env: GUARD_API_KEY (required), GUARD_LISTEN_HOST (0.0.0.0), GUARD_LISTEN_PORT (8000),
GUARD_UPSTREAM (http://127.0.0.1:8001), GUARD_MAX_BODY (1048576), GUARD_MAX_CONNECTIONS (64),
GUARD_UPSTREAM_TIMEOUT (600 s per upstream read), GUARD_LEASE_SECONDS (0: off), GUARD_STOP_AT
(0: none), GUARD_RUNPOD_API_URL (https://api.runpod.io), GUARD_LEASE_TICK (5 s between checks),
GUARD_LEASE_FILE (none: the lease starts afresh with the process).
"""
import hmac
import http.client
import http.server
import json
import ssl
import os
import re
import select
import socket
import sys
import threading
import time
import urllib.parse
from http import HTTPStatus

GUARD_VERSION = "3"
# Our own User-Agent on RunPod's API: Cloudflare in front of it is reported to block urllib's.
USER_AGENT = "runpod-llm-guard/" + GUARD_VERSION

ROUTES = frozenset({
    # The gateway's route table (src/gateway/routes/route-table.ts); a test keeps them equal.
    ("GET", "/v1/models"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/{id}"),
    ("POST", "/v1/responses/{id}/cancel"),
    ("POST", "/v1/rerank"),
    ("POST", "/v1/score"),
    ("POST", "/tokenize"),
    ("POST", "/detokenize"),
})
# A path segment "{id}" in ROUTES stands for exactly one segment of the request path (ID_SEGMENT);
# every other character matches itself. A query string never matches (no route has one).
ID = "{id}"
ID_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,200}")
HEALTH = ("GET", "/health")
LEASE = ("POST", "/runpod-llm/lease")
# RFC 9110 section 7.6.1: connection-specific fields are never forwarded.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"})
# Set by this hop itself, or by http.server when answering.
OWN_RESPONSE_HEADERS = frozenset({"content-length", "server", "date"})
# The only request fields vLLM needs; everything else (cookies, forwarding headers) stays here.
FORWARDED_REQUEST_HEADERS = ("Content-Type", "Accept", "X-Request-Id")
READ_SIZE = 16384
# A client connection's upstream connection is reused only this soon after its last response:
# well inside uvicorn's keep-alive (vLLM's VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s by default), so vLLM
# never closes it under a request in flight.
UPSTREAM_REUSE_SECONDS = 2.0
STOP_SELF_RETRY_SECONDS = 10
# Over-limit connections are answered 503 by at most this many extra threads, then just closed.
BUSY_ANSWERERS = 16


class Config:
    def __init__(self, env):
        self.host = env.get("GUARD_LISTEN_HOST", "0.0.0.0")
        self.port = _int(env, "GUARD_LISTEN_PORT", 8000, 0)
        upstream = urllib.parse.urlsplit(env.get("GUARD_UPSTREAM", "http://127.0.0.1:8001"))
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError("GUARD_UPSTREAM must be http://host:port")
        self.upstream = (upstream.hostname, upstream.port or 80)
        key = env.get("GUARD_API_KEY", "")
        if not key:
            raise ValueError("GUARD_API_KEY is required: without it the guard would protect nothing")
        self.key = key
        self.expected = ("Bearer " + key).encode("utf-8")
        self.max_body = _int(env, "GUARD_MAX_BODY", 1 << 20, 0)
        self.max_connections = _int(env, "GUARD_MAX_CONNECTIONS", 64, 1)
        self.upstream_timeout = _int(env, "GUARD_UPSTREAM_TIMEOUT", 600, 1)
        self.lease_seconds = _int(env, "GUARD_LEASE_SECONDS", 0, 0)
        self.stop_at = _int(env, "GUARD_STOP_AT", 0, 0)
        self.lease_tick = _int(env, "GUARD_LEASE_TICK", 5, 1)
        self.lease_file = env.get("GUARD_LEASE_FILE", "")
        self.runpod = RunPodApi(env)


def _int(env, name, default, minimum):
    raw = env.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
        raise ValueError("%s must be an integer >= %d" % (name, minimum))
    return int(raw)


def _printable(value, limit=80, spaces=False):
    low = " " if spaces else "!"
    return "".join(c if low <= c < "\x7f" else "?" for c in (value or "-")[:limit])


class RouteTable:
    """The allow-list: exact (method, path) pairs by one set lookup, `{id}` patterns only after a miss."""

    def __init__(self, routes):
        self.exact = frozenset(r for r in routes if ID not in r[1])
        self.patterns = {}  # (method, segment count) -> [segments]
        for method, path in routes:
            if ID not in path:
                continue
            segments = tuple(path.split("/"))
            if any(ID in s and s != ID for s in segments):
                raise ValueError("route %s %s: %s must be a whole path segment" % (method, path, ID))
            self.patterns.setdefault((method, len(segments)), []).append(segments)

    def allows(self, method, path):
        if (method, path) in self.exact:
            return True
        candidates = self.patterns.get((method, path.count("/") + 1))
        if not candidates:
            return False
        segments = path.split("/")
        return any(all(_segment_matches(want, got) for want, got in zip(pattern, segments)) for pattern in candidates)


def _segment_matches(want, got):
    if want != ID:
        return want == got
    # "." and ".." are ids to this pattern but path steps to anything that normalises after us.
    return ID_SEGMENT.fullmatch(got) is not None and got not in (".", "..")


class RunPodApi:
    """The few RunPod REST calls the pod makes about itself, with the pod-scoped key RunPod puts in
    every pod's env (RUNPOD_API_KEY, RUNPOD_POD_ID). Every answer is sorted into a verdict:
      ok          2xx
      gone        404: no such pod (after a stop: nothing left to stop)
      not running 409 to a stop: RunPod answers that for a pod that is not running
      refused     401, or 403 with a JSON body: the key is not accepted for this pod
      blocked     403 without a JSON body (Cloudflare's "error code: 1010" page): the request never
                  reached the API; our own User-Agent is meant to prevent it
      unreachable no answer, 429 or 5xx: try again later
    The key is never logged; a verdict line names the pod, the status and the verdict only."""

    def __init__(self, env):
        api = urllib.parse.urlsplit(env.get("GUARD_RUNPOD_API_URL", "https://api.runpod.io"))
        if api.scheme not in ("http", "https") or not api.hostname:
            raise ValueError("GUARD_RUNPOD_API_URL must be http(s)://host")
        self.api = api
        self.pod_id = env.get("RUNPOD_POD_ID", "")
        self.key = env.get("RUNPOD_API_KEY", "")

    def configured(self):
        return bool(self.pod_id and self.key)

    def call(self, method, suffix, body=None):
        """(verdict, detail): detail is "HTTP <status>" or the error's type."""
        api = self.api
        path = "%s/v2/pods/%s%s" % (api.path.rstrip("/"), urllib.parse.quote(self.pod_id, safe=""), suffix)
        if api.scheme == "https":
            conn = http.client.HTTPSConnection(api.hostname, api.port or 443, timeout=30, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(api.hostname, api.port or 80, timeout=30)
        headers = {"Authorization": "Bearer " + self.key, "User-Agent": USER_AGENT, "Accept": "application/json"}
        if body is not None:
            headers.update({"Content-Type": "application/json", "Content-Length": str(len(body))})
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read(65536)
            return self.verdict(response.status, text), "HTTP %d" % response.status
        except (OSError, http.client.HTTPException) as err:
            return "unreachable", type(err).__name__
        finally:
            conn.close()

    @staticmethod
    def verdict(status, text):
        if 200 <= status < 300:
            return "ok"
        if status == 404:
            return "gone"
        if status == 409:
            return "not running"
        if status == 401:
            return "refused"
        if status == 403:
            try:
                is_json = isinstance(json.loads(text), (dict, list))
            except ValueError:
                is_json = False
            return "refused" if is_json else "blocked"
        return "unreachable"

    def stop(self):
        verdict, detail = self.call("POST", "/action", b'{"action":"stop"}')
        return verdict in ("ok", "gone", "not running"), "%s (%s)" % (detail, STOP_WORDS.get(verdict, verdict))

    def check(self):
        """The key's read-only test at start: GET our own pod. 404 means the key cannot see it."""
        if not self.configured():
            return "missing", "RUNPOD_POD_ID or RUNPOD_API_KEY is not in the pod env"
        verdict, detail = self.call("GET", "")
        return {"gone": "refused", "not running": "unreachable"}.get(verdict, verdict), detail


STOP_WORDS = {"ok": "stopped", "gone": "pod gone: nothing to stop", "not running": "not running",
              "refused": "key refused", "blocked": "blocked before the API (Cloudflare?)", "unreachable": "no answer"}


class Lease:
    """Stops the pod when the manager has been away for the lease, or at the stop time.

    The deadline survives a restart of the container (RunPod restarts an exited container in
    place, its disk kept): it is written to GUARD_LEASE_FILE every tick, and a guard starting
    with that file carries the deadline on, stopping at once if it has passed. A crash loop
    therefore never grants itself a fresh lease; only the manager's renewals extend it."""

    def __init__(self, cfg, api):
        self.cfg = cfg
        self.api = api
        self.renewed = time.monotonic()
        self.saved = None
        self.self_stop = "checking" if api.configured() else "missing"

    def renew(self):
        self.renewed = time.monotonic()  # one assignment: atomic under the GIL

    def left(self):
        return self.cfg.lease_seconds - (time.monotonic() - self.renewed)

    def restore(self):
        """At start: carries on a deadline a previous start of this container wrote. A line saying so."""
        cfg = self.cfg
        if not (cfg.lease_seconds and cfg.lease_file):
            return None
        try:
            with open(cfg.lease_file, "rb") as f:
                deadline = float(json.loads(f.read(1024).decode("utf-8"))["deadline"])
            if deadline != deadline:  # NaN
                raise ValueError("NaN")
        except FileNotFoundError:
            self.save()
            return None
        except (OSError, ValueError, KeyError, TypeError):
            deadline = 0.0  # unreadable: as if it had run out, rather than a fresh lease
        left = min(deadline - time.time(), cfg.lease_seconds)
        self.renewed = time.monotonic() - (cfg.lease_seconds - left)
        self.save()
        if left <= 0:
            return "guard self-stop: the lease ran out before this start (container restarted); stopping now"
        return "guard self-stop: lease carried over from before this start (container restarted): %d s left" % left

    def save(self):
        cfg = self.cfg
        if not (cfg.lease_seconds and cfg.lease_file):
            return
        deadline = round(time.time() + self.left())
        if deadline == self.saved:
            return
        temp = cfg.lease_file + ".tmp"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"deadline": deadline}))
            os.replace(temp, cfg.lease_file)
            self.saved = deadline
        except OSError as err:
            sys.stderr.write("guard self-stop: cannot write %s: %s\n" % (_printable(cfg.lease_file), type(err).__name__))

    def due(self):
        away = time.monotonic() - self.renewed
        if self.cfg.lease_seconds and away >= self.cfg.lease_seconds:
            return "lease expired (nothing from the manager for %d s)" % away
        if self.cfg.stop_at and time.time() >= self.cfg.stop_at:
            return "stop time reached"
        return None

    def check_key(self):
        """Tests the pod key read-only until the API answers (every minute, at most 10 times)."""
        for _ in range(10):
            verdict, detail = self.api.check()
            self.self_stop = verdict
            sys.stderr.write("guard self-stop check: GET pod %s: %s (%s)\n" % (_printable(self.api.pod_id), verdict, detail))
            if verdict != "unreachable":
                return
            time.sleep(60)

    def watch(self):
        cfg = self.cfg
        while True:
            reason = self.due()
            if reason is None:
                self.save()
                time.sleep(cfg.lease_tick)
                continue
            if not self.api.configured():
                sys.stderr.write("guard self-stop: %s, but RUNPOD_POD_ID or RUNPOD_API_KEY is not in the pod env\n" % reason)
                return
            done, detail = self.api.stop()
            sys.stderr.write("guard self-stop: %s; stopping pod %s: %s\n" % (reason, _printable(self.api.pod_id), detail))
            if done:
                return
            time.sleep(60)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the client (RunPod's proxy)
    server_version = "guard"
    sys_version = ""  # no Python version in the Server header
    timeout = 60  # seconds a client may stay silent (idle keep-alive, slow headers or body)
    unread_body = False

    def setup(self):
        super().setup()
        # Replies leave as head + body in one write (start_response), but a relayed stream is
        # many small writes: without TCP_NODELAY, Nagle holds each one until the client's
        # delayed ACK (40 ms on Linux). http.client sets it on the upstream socket itself.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not a TCP socket

    def __getattr__(self, name):
        # Every method, known or invented, goes through the one gate (http.server would say 501).
        if name.startswith("do_"):
            return self.gate
        raise AttributeError(name)

    def gate(self):
        start = time.monotonic()
        status = 500
        try:
            status = self.route(self.server.cfg)
        except OSError:
            self.close_connection = True  # the client went away; closing the upstream aborts vLLM's work
        finally:
            self.log_line(status, start)

    def route(self, cfg):
        self.unread_body = "Transfer-Encoding" in self.headers or self.headers.get("Content-Length", "0") != "0"
        target = (self.command, self.path)
        if target == HEALTH:
            return self.health(cfg)
        if target != LEASE and not self.server.routes.allows(*target):
            return self.send_json(404, {"error": "Not Found"})
        auth = self.headers.get_all("Authorization") or []
        if len(auth) != 1 or not hmac.compare_digest(auth[0].encode("latin-1"), cfg.expected):
            return self.send_json(401, {"error": "Unauthorized"})
        self.server.lease.renew()
        if target == LEASE:
            if self.unread_body:
                self.close_connection = True  # a lease carries no body; do not read one
            lease = self.server.lease
            return self.send_json(200, {
                "guard": GUARD_VERSION,
                "lease_seconds": cfg.lease_seconds or None,
                "stop_at": cfg.stop_at or None,
                "self_stop": lease.self_stop,
            })
        codings = [c.strip().lower() for c in ",".join(self.headers.get_all("Transfer-Encoding") or []).split(",") if c.strip()]
        lengths = self.headers.get_all("Content-Length") or []
        if codings and codings != ["chunked"]:
            return self.send_json(501, {"error": "Not Implemented"})  # chunked is the one coding decoded here
        if (codings and lengths) or len(lengths) > 1 or not all(n.isascii() and n.isdigit() for n in lengths):
            return self.send_json(400, {"error": "Bad Request"})  # ambiguous framing: request smuggling's shapes
        length = int(lengths[0]) if lengths else 0
        if length > cfg.max_body:
            return self.send_json(413, {"error": "Payload Too Large"})
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # only now that the request may proceed
        body = self.read_chunked(cfg.max_body) if codings else self.rfile.read(length)
        if isinstance(body, int):
            return self.send_json(body, {"error": HTTPStatus(body).phrase})
        if not codings and len(body) != length:
            self.close_connection = True  # the client went away mid-body: nobody to answer
            return 400
        self.unread_body = False
        return self.forward(cfg, body)

    def read_chunked(self, limit):
        """A chunked body (RFC 9112 section 7.1), counted as it arrives; an int is a refusal."""
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            size = re.fullmatch(rb"([0-9a-fA-F]{1,8})(;[^\r\n]*)?\r\n", line)
            if size is None:
                return 400
            n = int(size.group(1), 16)
            if len(body) + n > limit:
                return 413
            if n == 0:
                break
            data = self.rfile.read(n + 2)
            if len(data) != n + 2 or not data.endswith(b"\r\n"):
                return 400
            body += data[:-2]
        for _ in range(32):  # trailer fields are dropped; the empty line ends the message
            line = self.rfile.readline(1024)
            if line == b"\r\n":
                return bytes(body)
            if not line.endswith(b"\r\n"):
                return 400
        return 400

    def handle_expect_100(self):
        # http.server would say "100 Continue" before the key was checked; route() says it later.
        return True

    def health(self, cfg):
        try:
            conn = http.client.HTTPConnection(*cfg.upstream, timeout=10)
            try:
                conn.request("GET", "/health")
                status = conn.getresponse().status
            finally:
                conn.close()
        except TimeoutError:
            status = 504
        except (OSError, http.client.HTTPException):
            status = 502  # nothing listens yet: the model is loading, as RunPod's proxy would say
        self.start_response(status, [("Content-Length", "0")])
        return status

    def forward(self, cfg, body):
        headers = {name: self.headers[name] for name in FORWARDED_REQUEST_HEADERS if name in self.headers}
        headers["Authorization"] = "Bearer " + cfg.key  # vLLM checks it too (its VLLM_API_KEY)
        if body or self.command == "POST":
            headers["Content-Length"] = str(len(body))
        conn = self.take_upstream() or http.client.HTTPConnection(*cfg.upstream, timeout=cfg.upstream_timeout)
        complete = False
        try:
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                upstream = conn.getresponse()
            except TimeoutError:
                return self.send_json(504, {"error": "Gateway Timeout"})
            except (OSError, http.client.HTTPException):
                return self.send_json(502, {"error": "Bad Gateway"})
            status = self.relay(upstream)
            # http.client marks a Content-Length body read to its end only on one more read.
            complete = (upstream.isclosed() or upstream.length == 0) and not upstream.will_close and not self.close_connection
            upstream.close()
            return status
        finally:
            if complete:
                # Read to its end: the next request on this client connection may use it.
                self.upstream, self.upstream_idle = conn, time.monotonic()
            else:
                conn.close()  # cut mid-response: closing it is what aborts vLLM's work

    upstream = None  # this client connection's idle keep-alive connection to vLLM, if any
    upstream_idle = 0.0

    def take_upstream(self):
        conn, self.upstream = self.upstream, None
        if conn is None:
            return None
        if time.monotonic() - self.upstream_idle < UPSTREAM_REUSE_SECONDS and conn.sock is not None:
            poll = select.poll()
            poll.register(conn.sock, select.POLLIN)
            if not poll.poll(0):
                return conn  # nothing to read: not closed by vLLM, no stray bytes
        conn.close()
        return None

    def finish(self):
        try:
            super().finish()
        finally:
            if self.upstream is not None:
                self.upstream.close()

    def relay(self, upstream):
        status = upstream.status
        drop = HOP_BY_HOP | OWN_RESPONSE_HEADERS | {
            token.strip().lower() for token in (upstream.getheader("Connection") or "").split(",")}
        headers = [(k, v) for k, v in upstream.getheaders() if k.lower() not in drop]
        has_body = status >= 200 and status not in (204, 304)
        chunked = False
        if has_body and not upstream.chunked and upstream.length is not None:
            headers.append(("Content-Length", str(upstream.length)))
        elif has_body and self.request_version == "HTTP/1.1":
            headers.append(("Transfer-Encoding", "chunked"))
            chunked = True
        elif has_body:
            self.close_connection = True  # an HTTP/1.0 client: the body ends when the connection does
        first = b""
        if has_body and not chunked and upstream.length is not None:
            # A complete answer follows its head at once: the head waits for the first bytes and
            # both leave in one write. A stream's head goes alone (its first event may be seconds
            # of prefill away, and the client should see the 200 now).
            first = self.read_upstream(upstream)
            if first is None:
                return status
        self.start_response(status, headers, first)
        while has_body and upstream.length != 0:  # None (chunked, or until close): to the end
            data = self.read_upstream(upstream)
            if data is None:
                return status
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        return status

    def read_upstream(self, upstream):
        try:
            return upstream.read1(READ_SIZE)
        except (OSError, http.client.HTTPException):
            # vLLM died or stalled mid-response: cut the client off without a clean ending,
            # so it sees a truncated response rather than a complete short one.
            self.close_connection = True
            return None

    def send_json(self, status, value):
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        self.start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))], data)
        return status

    def start_response(self, status, headers, body=b""):
        """Writes the head, and `body` with it in the same write (one segment for a small reply)."""
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.unread_body or self.close_connection:
            # A body we refused to read cannot be skipped safely: this connection is done.
            self.send_header("Connection", "close")
        head = getattr(self, "_headers_buffer", [])  # http.server's, empty for an HTTP/0.9 request
        if self.request_version != "HTTP/0.9":
            head.append(b"\r\n")
        self._headers_buffer = []
        self.wfile.write(b"".join(head) + body)

    def send_error(self, code, message=None, explain=None):
        # http.server's own refusals (bad request line, oversized headers): JSON, no echo of input.
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.send_json(code, {"error": phrase})
        self.log_line(code, time.monotonic())

    def log_line(self, status, start):
        path = (getattr(self, "path", "") or "").split("?", 1)[0]
        sys.stderr.write("guard %s %s %d %dms\n" % (
            _printable(getattr(self, "command", "")), _printable(path), status, (time.monotonic() - start) * 1000))

    def log_message(self, format, *args):
        pass  # http.server would log request lines and errors verbatim; log_line says enough


class GuardServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, cfg):
        self.cfg = cfg
        self.slots = threading.BoundedSemaphore(cfg.max_connections)
        self.busy_answerers = threading.BoundedSemaphore(BUSY_ANSWERERS)
        self.lease = Lease(cfg, cfg.runpod)
        self.routes = RouteTable(ROUTES)
        super().__init__((cfg.host, cfg.port), Handler)

    def process_request(self, request, client_address):
        if self.slots.acquire(blocking=False):
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.slots.release()
                raise
        elif self.busy_answerers.acquire(blocking=False):
            threading.Thread(target=self.answer_busy, args=(request,), daemon=True).start()
        else:
            self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def answer_busy(self, request):
        body = b'{"error":"Service Unavailable"}'
        try:
            request.settimeout(2)
            try:
                request.recv(65536)  # take the request head first: closing on unread data resets the answer
            except OSError:
                pass
            request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
            self.busy_answerers.release()

    def handle_error(self, request, client_address):
        # The exception's type only: a traceback's locals could hold request data.
        sys.stderr.write("guard error %s\n" % type(sys.exc_info()[1]).__name__)


def main():
    try:
        cfg = Config(os.environ)
    except ValueError as err:
        sys.stderr.write("guard: %s\n" % err)
        return 2
    server = GuardServer(cfg)
    host, port = server.server_address[:2]
    sys.stderr.write("guard v%s listening on %s:%d, upstream %s:%d\n" % (GUARD_VERSION, host, port, *cfg.upstream))
    lease = server.lease
    if cfg.runpod.configured():
        threading.Thread(target=lease.check_key, daemon=True).start()
    if cfg.lease_seconds or cfg.stop_at:
        sys.stderr.write("guard self-stop: lease %s, stop at %s\n" % (
            "%d s" % cfg.lease_seconds if cfg.lease_seconds else "off", cfg.stop_at or "none"))
        carried = lease.restore()
        if carried:
            sys.stderr.write(carried + "\n")
        threading.Thread(target=lease.watch, daemon=True).start()
    server.serve_forever()
    return 0


def stop_self(reason):
    """`guard.py --stop-self [reason]`: the start script's way to stop its own pod when vLLM dies,
    instead of exiting into RunPod's restart loop. Exit 0 once stopped (or nothing to stop), 1 if
    the API refused or could not be reached in three tries, 3 without the pod env."""
    try:
        api = RunPodApi(os.environ)
    except ValueError as err:
        sys.stderr.write("guard: %s\n" % err)
        return 2
    if not api.configured():
        sys.stderr.write("guard self-stop: %s, but RUNPOD_POD_ID or RUNPOD_API_KEY is not in the pod env\n" % reason)
        return 3
    for attempt in range(3):
        if attempt:
            time.sleep(STOP_SELF_RETRY_SECONDS)
        done, detail = api.stop()
        sys.stderr.write("guard self-stop: %s; stopping pod %s: %s\n" % (reason, _printable(api.pod_id), detail))
        if done:
            return 0
        if "refused" in detail or "blocked" in detail:
            return 1  # asking again gets the same answer
    return 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stop-self"]:
        sys.exit(stop_self(_printable(" ".join(sys.argv[2:]) or "asked to", 200, spaces=True)))
    sys.exit(main())
