#!/usr/bin/env python3
"""runpod-llm guard: the only thing listening on a pod's public port.

RunPod's pod URL (https://{podId}-8000.proxy.runpod.net) is public, and vLLM's --api-key guards
only /v1: /invocations, /tokenize, /pause, /update_weights, /metrics, ... stay open. So vLLM
listens on 127.0.0.1:8001 and this proxy on 0.0.0.0:8000 forwards five routes, the /v1 ones only
with the pod's key. Standard library only: it runs on the stock vllm/vllm-openai image.

Decisions, first match wins:
  GET /health                          -> vLLM's /health status (502 while it loads), empty body
  target not an allowed route          -> 404; exact string match, no decoding or normalising,
                                          leaves nothing for two parsers to disagree on; a route's
                                          `{id}` segment matches one segment of [A-Za-z0-9_.-]
                                          (1-200 characters, not "." or ".."); a query string
                                          only as QUERIES allows it for the route
  Authorization != "Bearer <key>"      -> 401 {"error":"Unauthorized"}, as vLLM says it
  ambiguous or broken body framing     -> 400 (CL with TE, two CLs, a bad chunk: request
                                          smuggling's shapes); 501 for a coding but chunked
  body over GUARD_MAX_BODY             -> 413: Content-Length before reading, chunked bodies
                                          counted while read (the proxy in front may re-chunk)
  otherwise                            -> forwarded with a Content-Length; the response streams
                                          back as it arrives (SSE is never buffered)
Over GUARD_MAX_CONNECTIONS open connections -> 503. Log: one line per request (method, path,
status, ms), never headers, bodies or query strings. One asyncio loop per worker process serves
its connections (a thread per connection cost 3-4x the CPU per request and per SSE
event; GUARD_WORKERS processes share the listening socket and the cap); a client has
60 s for a request head (slow-header trickles included) and 60 s of silence within a body or
between requests.

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
GUARD_LEASE_FILE (none: the lease starts afresh with the process), GUARD_WORKERS (a quarter of the
CPUs, 1 to 4: processes serving the one listening socket; the first also keeps the lease).
"""
import asyncio
import hmac
import http.client
import json
import mmap
import ssl
import os
import signal
import struct
import re
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
# every other character matches itself.
ID = "{id}"
ID_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,200}")
# The query strings a route may carry: each parameter at most once, in any order, its value whole
# against its pattern (nothing decoded). Any other "?" in a target is refused (404). The
# Responses API's retrieval: GET /v1/responses/{id}?stream=true&starting_after=N.
QUERIES = {
    # The gateway's API_QUERIES (src/gateway/routes/route-table.ts); a test keeps them equal.
    ("GET", "/v1/responses/{id}"): {"stream": re.compile(r"true|false"), "starting_after": re.compile(r"[0-9]{1,9}")},
}
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
        # A quarter of the CPUs, 1 to 4: one process relays 23,000-36,000 SSE events/s per core
        # (bench/RESULTS.md), a GPU's full batch is ~12,500 tokens/s, and vLLM's own API server and
        # tokenizers need the other cores; on a small box more workers only compete.
        self.workers = _int(env, "GUARD_WORKERS", max(1, min(len(os.sched_getaffinity(0)) // 4, 4)), 1)
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
        return self.match(method, path) is not None

    def match(self, method, path):
        """The route (method, path as in ROUTES) that `path` (no query) matches, or None."""
        if (method, path) in self.exact:
            return method, path
        candidates = self.patterns.get((method, path.count("/") + 1))
        if not candidates:
            return None
        segments = path.split("/")
        for pattern in candidates:
            if all(_segment_matches(want, got) for want, got in zip(pattern, segments)):
                return method, "/".join(pattern)
        return None

    def allows_target(self, method, target, queries=None):
        """`target` is a route, with a query string only as QUERIES allows it for that route."""
        path, mark, query = target.partition("?")
        route = self.match(method, path)
        if route is None or not mark:
            return route is not None
        allowed = (QUERIES if queries is None else queries).get(route)
        if not allowed:
            return False
        seen = set()
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            pattern = allowed.get(name)
            if not equals or name in seen or pattern is None or pattern.fullmatch(value) is None:
                return False
            seen.add(name)
        return True


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


VERDICTS = ("checking", "ok", "refused", "blocked", "unreachable", "missing")
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
        # Shared with the workers forked after it (MAP_SHARED): when the last renewal was (CLOCK_
        # MONOTONIC is one clock for every process) and the key check's verdict. An aligned
        # 8-byte store is one instruction on x86-64 and arm64: no torn reads.
        self.cell = mmap.mmap(-1, 16)
        self.renewed = time.monotonic()
        self.saved = None
        self.self_stop = "checking" if api.configured() else "missing"

    renewed = property(lambda self: struct.unpack_from("d", self.cell)[0],
                       lambda self, value: struct.pack_into("d", self.cell, 0, value))
    self_stop = property(lambda self: VERDICTS[self.cell[8]], lambda self, value: self.cell.__setitem__(8, VERDICTS.index(value)))

    def renew(self):
        self.renewed = time.monotonic()

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


CLIENT_TIMEOUT = 60  # seconds a client may take for a request head, or stay silent in a body or between requests
HEAD_LIMIT = 65536  # longest request line or header field (as http.server: 414 / 431 beyond)
MAX_HEADERS = 100  # header fields in one head (as http.server: 431 beyond)
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
CHUNK_SIZE = re.compile(rb"([0-9a-fA-F]{1,8})(;[^\r\n]*)?\r\n")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _buffered_fields(reader):
    """The field lines of a head that already sits whole in `reader`'s buffer (the usual case: a
    head arrives in one segment), each as readline would return it, the blank line last; None
    when it has not all arrived (or looks odd), for the line-by-line path to read it."""
    buf = reader._buffer
    if buf[:2] == b"\r\n":
        end = 0
    else:
        end = buf.find(b"\r\n\r\n")
        if end < 0 or end > HEAD_LIMIT or buf.find(b"\n\n", 0, end) >= 0:
            return None
        end += 2
    data = bytes(buf[:end + 2])
    return [line + b"\n" for line in data.split(b"\n")[:-1]]


def _phrase(status):
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class Refusal(Exception):
    """A request the guard answers with `status` before reading any further."""

    def __init__(self, status):
        super().__init__(status)
        self.status = status


class Closed(Exception):
    """The client went away or broke off (nothing to answer)."""


# What an Upstream is doing; data_received acts on it.
IDLE, HEAD, LENGTH, CHUNKED, UNTIL_CLOSE = range(5)
# What it tells the coroutine waiting on it.
DONE, CUT, GONE, DRAIN, WOKEN = range(5)
HEAD_END = re.compile(rb"\r?\n\r?\n")
RESPONSE_CHUNK = re.compile(rb"([0-9a-fA-F]{1,16})(\r\n|[ \t;][^\n]*\n|\n)")
HIGH_WATER = 65536  # the client transport's buffer above which vLLM is not read (asyncio's own default)


class Upstream(asyncio.Protocol):
    """One HTTP/1.1 connection to vLLM, read by callbacks: a response body goes on to the client
    transport from data_received as it arrives, without a task wake-up per read (that
    was most of the CPU per SSE event). Chunked framing is checked as it passes and relayed as is,
    a chunk extension rewritten and trailer fields dropped; vLLM is not read while the client's
    buffer is over HIGH_WATER. Every read is bounded by GUARD_UPSTREAM_TIMEOUT: a watchdog per
    connection (not a timer per read) aborts it when no read made progress for that long."""

    def __init__(self, timeout, loop):
        self.timeout, self.loop = timeout, loop
        self.transport = None
        self.progress = loop.time()
        self.timer = None
        self.timed_out = False
        self.idle_since = 0.0
        self.closed = False
        self.dirty = False  # bytes outside a response: never reused
        self.buf = bytearray()  # a response head as it arrives
        self.mode = IDLE
        self.state = None
        self.waiter = None
        self.client = None  # the client transport while a body is relayed
        self.prefix = b""  # the response head, sent with the first body bytes
        self.framed = False  # the client gets chunked framing
        self.left = 0  # bytes of the body (LENGTH) or of the chunk (CHUNKED) still to come
        self.partial = b""  # a chunk line cut by a read
        self.crlf = False  # the CRLF after a chunk's data comes next
        self.trailers = -1  # trailer fields seen after the last chunk (-1: not there yet)
        self.paused = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.progress = self.loop.time()
        mode = self.mode
        if mode == CHUNKED:
            self.chunked(data)
        elif mode == LENGTH:
            left = self.left
            if len(data) >= left:
                if len(data) > left:
                    self.dirty = True
                    data = data[:left]
                self.left = 0
                if self.send(data):
                    self.end(DONE)
            else:
                self.left = left - len(data)
                self.send(data)
        elif mode == HEAD:
            self.buf += data
            self.wake(WOKEN)
        elif mode == UNTIL_CLOSE:
            self.send(b"%x\r\n%s\r\n" % (len(data), data) if self.framed else data)
        else:
            self.dirty = True

    def eof_received(self):
        if self.mode == UNTIL_CLOSE and (not self.framed or self.send(b"0\r\n\r\n")):
            self.end(DONE)
        self.connection_lost(None)

    def connection_lost(self, exc):
        self.closed = True
        self.unwatch()
        if self.mode == HEAD:
            self.wake(WOKEN)
        elif self.mode != IDLE:
            self.end(CUT)

    def pause_writing(self):
        pass  # a request is one write, bounded by GUARD_MAX_BODY

    def resume_writing(self):
        pass

    def wake(self, state):
        if self.state is None or self.state in (DRAIN, WOKEN):
            self.state = state
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self):
        while self.state is None:
            self.waiter = self.loop.create_future()
            await self.waiter
        state, self.state = self.state, None
        return state

    def end(self, state):
        self.mode = IDLE
        self.client = None
        self.resume()
        self.wake(state)

    def resume(self):
        if self.paused:
            self.paused = False
            if not self.closed:
                self.transport.resume_reading()

    def send(self, data):
        """To the client; False (and this connection aborted) when the client is gone."""
        client = self.client
        if client.is_closing():
            self.transport.abort()  # what aborts vLLM's work
            self.end(GONE)
            return False
        if self.prefix:
            data, self.prefix = self.prefix + data, b""
        client.write(data)
        if not self.paused and client.get_write_buffer_size() > HIGH_WATER:
            self.paused = True
            self.transport.pause_reading()
            self.wake(DRAIN)
        return True

    def chunked(self, data):
        """Chunks relayed as they come: the bytes pass as they are, framing checked on the way."""
        out = []
        framed = self.framed
        n = len(data)
        pos = run = 0  # data[run:pos] goes to the client as it is
        if framed and not (self.left or self.partial or self.crlf) and self.trailers < 0:
            # The usual read: whole chunks of clean framing (an SSE event or a few), one check each.
            while True:
                size = RESPONSE_CHUNK.match(data, pos)
                if size is None or size.group(2) != b"\r\n":
                    break
                end = size.end() + int(size.group(1), 16)
                if end == size.end() or data[end:end + 2] != b"\r\n":
                    break
                pos = end + 2
                if pos == n:
                    return self.send(data)
        while pos < n:
            if self.left:
                take = min(self.left, n - pos)
                self.left -= take
                pos += take
                self.crlf = not self.left
                continue
            nl = data.find(b"\n", pos)
            if nl < 0:
                self.partial += data[pos:]
                if len(self.partial) > 1024:
                    return self.end(CUT)
                out.append(data[run:pos])
                run = pos = n
                break
            start, pos = pos, nl + 1
            line = data[start:pos]
            whole = not self.partial
            if not whole:
                line, self.partial = self.partial + line, b""
            if self.crlf:
                if line != b"\r\n":
                    return self.end(CUT)
                self.crlf = False
                keep = framed
                replacement = line if framed else b""
            elif self.trailers >= 0:
                if line == b"\r\n" or line == b"\n":
                    out.append(data[run:start])
                    if framed:
                        out.append(b"0\r\n\r\n")
                    if pos < n:
                        self.dirty = True
                    if self.send(b"".join(out)):
                        self.end(DONE)
                    return None
                self.trailers += 1
                if self.trailers > MAX_HEADERS:
                    return self.end(CUT)
                keep = False
                replacement = b""
            else:
                size = RESPONSE_CHUNK.fullmatch(line)
                if size is None:
                    return self.end(CUT)
                self.left = int(size.group(1), 16)
                if not self.left:
                    self.trailers = 0
                    keep = False
                    replacement = b""
                else:
                    keep = framed and size.group(2) == b"\r\n"
                    replacement = (b"%x\r\n" % self.left) if framed else b""
            if not (keep and whole):
                out.append(data[run:start])
                if replacement:
                    out.append(replacement)
                run = pos
        out.append(data[run:n])
        data = out[0] if len(out) == 1 else b"".join(out)
        if data:
            self.send(data)
        return None

    async def head(self):
        """The next response head (bytes, its blank line included); what follows stays in buf."""
        while True:
            end = HEAD_END.search(self.buf)
            if end is not None:
                head = bytes(self.buf[:end.end()])
                del self.buf[:end.end()]
                return head
            if len(self.buf) > HEAD_LIMIT:
                raise ValueError("response head too long")
            if self.closed:
                raise ConnectionResetError("vLLM closed the connection")
            self.mode = HEAD
            await self.wait()
            self.mode = IDLE

    async def relay(self, client, mode, length, framed, prefix):
        """Sends the body on; DONE (read to its end), CUT (vLLM broke off) or GONE (the client)."""
        self.client, self.mode, self.left, self.framed, self.prefix = client, mode, length or 0, framed, prefix
        self.partial, self.crlf, self.trailers = b"", False, -1
        rest, self.buf = bytes(self.buf), bytearray()
        if rest:
            self.data_received(rest)
        if self.mode != IDLE and self.closed:
            self.eof_received()
        return await self.wait()

    def watch(self):
        self.progress = self.loop.time()
        if self.timer is None:
            self.timer = self.loop.call_at(self.progress + self.timeout, self._check)

    def unwatch(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check(self):
        late = self.progress + self.timeout
        if self.loop.time() >= late:
            self.timer = None
            self.timed_out = True
            self.transport.abort()
        else:
            self.timer = self.loop.call_at(late, self._check)

    def reusable(self):
        """Read to its end, recently, and nothing arrived since: vLLM has not closed it."""
        return (self.loop.time() - self.idle_since < UPSTREAM_REUSE_SECONDS and not self.closed and not self.dirty
                and not self.buf and not self.transport.is_closing())

    def close(self):
        self.unwatch()
        self.transport.close()  # mid-response, this is what aborts vLLM's work


class Connection:
    """One client connection: requests one after another (keep-alive), each through `gate`."""

    def __init__(self, server, reader, writer):
        self.server = server
        self.cfg = server.cfg
        self.loop = server.loop
        self.reader = reader
        self.writer = writer
        self.upstream = None  # this client connection's idle keep-alive connection to vLLM, if any
        self.timed_out = False
        self.command = None
        self.path = None
        self.request_version = "HTTP/1.1"
        self.close_connection = True
        self.unread_body = False
        self.fields = {}

    async def serve(self):
        try:
            while await self.handle_one() and not self.close_connection:
                pass
        finally:
            if self.upstream is not None:
                self.upstream.close()
                self.upstream = None
            self.writer.close()

    def _expire(self):
        self.timed_out = True
        self.writer.transport.abort()

    async def handle_one(self):
        """Reads one request head and answers it; False when the connection is done."""
        self.close_connection = True
        self.unread_body = False
        self.command = None
        timer = self.loop.call_later(CLIENT_TIMEOUT, self._expire)
        try:
            try:
                parsed = await self.read_head()
            finally:
                timer.cancel()
        except Refusal as refusal:
            # A bad request line or head (http.server's own refusals): JSON, no echo of input.
            self.close_connection = True
            start = time.monotonic()
            try:
                self.send_json(refusal.status, {"error": _phrase(refusal.status) or "Error"})
                await self.writer.drain()
            except (ConnectionError, OSError):
                pass
            self.log_line(refusal.status, start)
            return False
        except (Closed, ConnectionError, OSError, asyncio.IncompleteReadError):
            return False
        if not parsed:
            return False
        await self.gate()
        return True

    async def read_head(self):
        reader = self.reader
        try:
            raw = await reader.readline()
        except ValueError:  # longer than HEAD_LIMIT
            raise Refusal(414)
        if not raw or not raw.endswith(b"\n"):
            return False  # EOF (or cut mid-line): the client is done
        words = str(raw, "iso-8859-1").rstrip("\r\n").split()
        if not words:
            return False  # an empty line where a request should be: as http.server, close
        if len(words) >= 3:
            version = words[-1]
            try:
                if not version.startswith("HTTP/"):
                    raise ValueError
                numbers = version.split("/", 1)[1].split(".")
                if len(numbers) != 2 or any(not n.isdigit() or len(n) > 10 for n in numbers):
                    raise ValueError
                number = (int(numbers[0]), int(numbers[1]))
            except (ValueError, IndexError):
                raise Refusal(400)
            if number >= (2, 0):
                raise Refusal(505)
            self.request_version = version
            if number >= (1, 1):
                self.close_connection = False
        if len(words) != 3:
            raise Refusal(400)  # no HTTP/0.9, no spaces in a target
        command, path = words[0], words[1]
        if path.startswith("//"):
            path = "/" + path.lstrip("/")  # as http.server (3.11+), which the threaded guard used
        fields = {}
        count = 0
        buffered = _buffered_fields(reader)
        if buffered is not None:
            await reader.readexactly(sum(map(len, buffered)))  # at once: it is all buffered
            buffered = iter(buffered)
        while True:
            try:
                line = next(buffered) if buffered is not None else await reader.readline()
            except ValueError:
                raise Refusal(431)
            if line in (b"\r\n", b"\n"):
                break
            if not line.endswith(b"\n"):
                raise Closed()  # EOF inside the head
            count += 1
            if count > MAX_HEADERS:
                raise Refusal(431)
            text = str(line, "iso-8859-1").rstrip("\r\n")
            at = text.find(":")
            # No obs-fold, no space before the colon, a token for a name (RFC 9112 section 5):
            # a field two parsers could read differently is refused, not guessed at.
            if at <= 0 or TOKEN.fullmatch(text, 0, at) is None:
                raise Refusal(400)
            # As the email parser http.server used: leading blanks off, trailing ones kept.
            fields.setdefault(text[:at].lower(), []).append(text[at + 1:].lstrip(" \t"))
        self.command, self.path, self.fields = command, path, fields
        connection = fields.get("connection", ("",))[0].lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        return True

    def header(self, name, default=None):
        values = self.fields.get(name)
        return values[0] if values else default

    async def gate(self):
        start = time.monotonic()
        status = 500
        try:
            status = await self.route(self.cfg)
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            self.close_connection = True  # the client went away; closing the upstream aborts vLLM's work
        except Exception:
            self.close_connection = True
            sys.stderr.write("guard error %s\n" % type(sys.exc_info()[1]).__name__)
        finally:
            self.log_line(status, start)

    async def route(self, cfg):
        fields = self.fields
        self.unread_body = "transfer-encoding" in fields or self.header("content-length", "0") != "0"
        target = (self.command, self.path)
        if target == HEALTH:
            return await self.health(cfg)
        if target != LEASE and not self.server.routes.allows_target(*target):
            return await self.answer_json(404, {"error": "Not Found"})
        auth = fields.get("authorization") or []
        if len(auth) != 1 or not hmac.compare_digest(auth[0].encode("latin-1"), cfg.expected):
            return await self.answer_json(401, {"error": "Unauthorized"})
        lease = self.server.lease
        lease.renew()
        if target == LEASE:
            if self.unread_body:
                self.close_connection = True  # a lease carries no body; do not read one
            return await self.answer_json(200, {
                "guard": GUARD_VERSION,
                "lease_seconds": cfg.lease_seconds or None,
                "stop_at": cfg.stop_at or None,
                "self_stop": lease.self_stop,
            })
        codings = [c.strip().lower() for c in ",".join(fields.get("transfer-encoding") or []).split(",") if c.strip()]
        lengths = fields.get("content-length") or []
        if codings and codings != ["chunked"]:
            return await self.answer_json(501, {"error": "Not Implemented"})  # chunked is the one coding decoded here
        if (codings and lengths) or len(lengths) > 1 or not all(n.isascii() and n.isdigit() for n in lengths):
            return await self.answer_json(400, {"error": "Bad Request"})  # ambiguous framing: request smuggling's shapes
        length = int(lengths[0]) if lengths else 0
        if length > cfg.max_body:
            return await self.answer_json(413, {"error": "Payload Too Large"})
        if self.header("expect", "").lower() == "100-continue":
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # only now that the request may proceed
        body = await (self.read_chunked(cfg.max_body) if codings else self.read_body(length))
        if isinstance(body, int):
            if self.timed_out:
                return 500
            return await self.answer_json(body, {"error": HTTPStatus(body).phrase})
        if body is None:
            self.close_connection = True  # the client went away mid-body: nobody to answer
            return 500 if self.timed_out else 400
        self.unread_body = False
        return await self.forward(cfg, body)

    async def _read(self, read, *args):
        """One read of the request body, bounded by CLIENT_TIMEOUT of silence (as the threaded
        guard's socket timeout)."""
        timer = self.loop.call_later(CLIENT_TIMEOUT, self._expire)
        try:
            return await read(*args)
        finally:
            timer.cancel()

    async def read_body(self, length):
        """A Content-Length body; None if the client went away before its end."""
        if not length:
            return b""
        reader = self.reader
        try:
            if length <= READ_SIZE:
                return await self._read(reader.readexactly, length)
            parts = []
            left = length
            while left:
                data = await self._read(reader.read, min(left, 65536))
                if not data:
                    return None
                parts.append(data)
                left -= len(data)
            return b"".join(parts)
        except asyncio.IncompleteReadError:
            return None

    async def read_chunked(self, limit):
        """A chunked body (RFC 9112 section 7.1), counted as it arrives; an int is a refusal."""
        reader = self.reader
        body = bytearray()
        try:
            while True:
                line = await self._line(1024)
                size = CHUNK_SIZE.fullmatch(line)
                if size is None:
                    return 400
                n = int(size.group(1), 16)
                if len(body) + n > limit:
                    return 413
                if n == 0:
                    break
                data = await self._read(reader.readexactly, n + 2)
                if not data.endswith(b"\r\n"):
                    return 400
                body += data[:-2]
            for _ in range(32):  # trailer fields are dropped; the empty line ends the message
                line = await self._line(1024)
                if line == b"\r\n":
                    return bytes(body)
                if not line.endswith(b"\r\n"):
                    return 400
            return 400
        except asyncio.IncompleteReadError:
            return 400

    async def _line(self, limit):
        """A line of at most `limit` bytes (longer, or cut by EOF: returned as is, which no caller accepts)."""
        try:
            line = await self._read(self.reader.readline)
        except ValueError:
            return b""
        return line if len(line) <= limit else b""

    async def health(self, cfg):
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(*cfg.upstream), 10)
            writer.write(b"GET /health HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n\r\n" % self.server.upstream_host)
            line = await asyncio.wait_for(reader.readline(), 10)
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
                raise ValueError("bad status line")
            status = int(parts[1])
            if status < 100:
                raise ValueError("bad status")
        except asyncio.TimeoutError:
            status = 504
        except (OSError, ValueError, asyncio.IncompleteReadError):
            status = 502  # nothing listens yet: the model is loading, as RunPod's proxy would say
        finally:
            if writer is not None:
                writer.close()
        self.start_response(status, [(b"Content-Length", b"0")])
        await self.writer.drain()
        return status

    def take_upstream(self):
        up, self.upstream = self.upstream, None
        if up is None:
            return None
        if up.reusable():
            return up
        up.close()
        return None

    async def forward(self, cfg, body):
        server = self.server
        lines = [b"%s %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n" % (
            self.command.encode("latin-1"), self.path.encode("latin-1"), server.upstream_host)]
        for name, lower in FORWARDED:
            value = self.header(lower)
            if value is not None:
                lines.append(b"%s: %s\r\n" % (name, value.encode("latin-1")))
        lines.append(server.upstream_auth)  # vLLM checks it too (its VLLM_API_KEY)
        if body or self.command == "POST":
            lines.append(b"Content-Length: %d\r\n" % len(body))
        lines.append(b"\r\n")
        lines.append(body)
        up = self.take_upstream()
        complete = False
        try:
            if up is None:
                loop = self.loop
                try:
                    _, up = await asyncio.wait_for(loop.create_connection(
                        lambda: Upstream(cfg.upstream_timeout, loop), *cfg.upstream), cfg.upstream_timeout)
                except asyncio.TimeoutError:
                    return await self.answer_json(504, {"error": "Gateway Timeout"})
                except OSError:
                    return await self.answer_json(502, {"error": "Bad Gateway"})
            up.watch()
            try:
                up.transport.write(b"".join(lines))
                response = await self.read_response_head(up)
            except (OSError, ValueError):
                if up.timed_out:
                    return await self.answer_json(504, {"error": "Gateway Timeout"})
                return await self.answer_json(502, {"error": "Bad Gateway"})
            status, ended = await self.relay(up, *response)
            complete = ended and not self.close_connection
            return status
        finally:
            if up is not None:
                if complete:
                    # Read to its end: the next request on this client connection may use it.
                    up.unwatch()
                    up.idle_since = self.loop.time()
                    self.upstream = up
                else:
                    up.close()  # cut mid-response: closing it is what aborts vLLM's work

    async def read_response_head(self, up):
        """(status, version 11 or 10, [(name, value)] as bytes): as http.client reads it."""
        while True:
            lines = (await up.head()).split(b"\n")[:-2]
            parts = lines[0].split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit():
                raise ValueError("bad status line")
            status = int(parts[1])
            if status < 100:
                raise ValueError("bad status")
            if len(lines) > MAX_HEADERS + 1:
                raise ValueError("too many headers")
            headers = []
            for field in lines[1:]:
                name, colon, value = field.partition(b":")
                if not colon:
                    raise ValueError("bad header")
                headers.append((name, value.lstrip(b" \t").rstrip(b"\r")))
            if status != 100:
                return status, (10 if parts[0] == b"HTTP/1.0" else 11), headers

    async def relay(self, up, status, version, upstream_headers):
        """Sends vLLM's answer on as it arrives. (status, whether it was read to its end and the
        upstream connection may be kept)."""
        first_of = {}
        connection = []
        for name, value in upstream_headers:
            lower = name.lower()
            if lower not in first_of:
                first_of[lower] = value
            if lower == b"connection":
                connection.append(value)
        drop = HOP_BY_HOP_BYTES | {t.strip().lower() for t in b",".join(connection).split(b",")}
        headers = [(k, v) for k, v in upstream_headers if k.lower() not in drop]
        # Framing, as http.client decides it.
        te = first_of.get(b"transfer-encoding")
        up_chunked = te is not None and te.lower() == b"chunked"
        conn_value = b", ".join(connection).lower()
        if version == 11:
            will_close = b"close" in conn_value
        else:
            will_close = not (b"keep-alive" in first_of or b"keep-alive" in conn_value)
        length = None
        if not up_chunked:
            raw_length = first_of.get(b"content-length")
            if raw_length is not None:
                try:
                    length = int(raw_length)
                except ValueError:
                    length = None
                if length is not None and length < 0:
                    length = None
        if status in (204, 304) or status < 200:
            length = 0
        if not will_close and not up_chunked and length is None:
            will_close = True
        has_body = status >= 200 and status not in (204, 304)
        chunked = False
        if has_body and not up_chunked and length is not None:
            headers.append((b"Content-Length", b"%d" % length))
        elif has_body and self.request_version == "HTTP/1.1":
            headers.append((b"Transfer-Encoding", b"chunked"))
            chunked = True
        elif has_body:
            self.close_connection = True  # an HTTP/1.0 client: the body ends when the connection does
        writer = self.writer
        if not has_body or length == 0:
            if up.buf:
                up.dirty = True
            self.start_response(status, headers)
            await writer.drain()
            return status, not will_close
        if length is not None:
            # A complete answer follows its head at once: the head waits for the first bytes and
            # both leave in one write. A stream's head goes alone (its first event may be seconds
            # of prefill away, and the client should see the 200 now).
            state = await up.relay(writer.transport, LENGTH, length, False, self.response_head(status, headers))
        else:
            self.start_response(status, headers)
            await writer.drain()
            state = await up.relay(writer.transport, CHUNKED if up_chunked else UNTIL_CLOSE, None, chunked, b"")
        while state == DRAIN:
            await writer.drain()
            up.resume()
            state = await up.wait()
        if state == GONE:
            raise ConnectionResetError("the client went away")
        if state == CUT:
            # vLLM died or stalled mid-response: cut the client off without a clean ending,
            # so it sees a truncated response rather than a complete short one.
            self.close_connection = True
            return status, False
        return status, not will_close  # a body until the close always has will_close

    async def answer_json(self, status, value):
        self.send_json(status, value)
        await self.writer.drain()
        return status

    def send_json(self, status, value):
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        self.start_response(status, [(b"Content-Type", b"application/json"), (b"Content-Length", b"%d" % len(data))], data)
        return status

    def start_response(self, status, headers, body=b""):
        """Writes the head, and `body` with it in the same write (one segment for a small reply)."""
        self.writer.write(self.response_head(status, headers, body))

    def response_head(self, status, headers, body=b""):
        head = [b"HTTP/1.1 %d %s\r\nServer: guard\r\nDate: %s\r\n" % (status, _phrase(status).encode("latin-1"), self.server.date())]
        for name, value in headers:
            head.append(b"%s: %s\r\n" % (name, value))
        if self.unread_body or self.close_connection:
            # A body we refused to read cannot be skipped safely: this connection is done.
            head.append(b"Connection: close\r\n")
            self.close_connection = True
        head.append(b"\r\n")
        head.append(body)
        return b"".join(head)

    def log_line(self, status, start):
        command = self.command or "-"
        path = (self.path or "-").split("?", 1)[0] or "-"
        if not (len(command) <= 80 and command.isascii() and command.isalpha()):
            command = _printable(command)
        if not (len(path) <= 80 and path.isascii() and path.isprintable() and " " not in path):
            path = _printable(path)
        sys.stderr.write("guard %s %s %d %dms\n" % (command, path, status, (time.monotonic() - start) * 1000))


HOP_BY_HOP_BYTES = frozenset(h.encode("latin-1") for h in HOP_BY_HOP | OWN_RESPONSE_HEADERS)
FORWARDED = tuple((name.encode("latin-1"), name.lower()) for name in FORWARDED_REQUEST_HEADERS)


class GuardServer:
    """The listening socket and what all connections share: the cap, the lease, the route table."""

    def __init__(self, cfg, loop, lease, slots):
        self.cfg = cfg
        self.loop = loop
        self.lease = lease
        self.slots = slots
        self.routes = RouteTable(ROUTES)
        self.busy = 0
        host, port = cfg.upstream
        self.upstream_host = (host if port == 80 else "%s:%d" % (host, port)).encode("idna")
        self.upstream_auth = ("Authorization: Bearer %s\r\n" % cfg.key).encode("latin-1")
        self.server = None
        self._date = (0, b"")

    def date(self):
        now = int(time.time())
        if self._date[0] != now:
            t = time.gmtime(now)
            self._date = (now, ("%s, %02d %s %04d %02d:%02d:%02d GMT" % (
                WEEKDAYS[t.tm_wday], t.tm_mday, MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec)).encode("ascii"))
        return self._date[1]

    async def start(self, sock):
        self.server = await asyncio.start_server(self.accept, sock=sock, limit=HEAD_LIMIT)

    async def accept(self, reader, writer):
        # Replies leave as head + body in one write (start_response), but a relayed stream is
        # many small writes: without TCP_NODELAY, Nagle holds each one until the client's
        # delayed ACK (40 ms on Linux). asyncio sets it too; the upstream side likewise.
        sock = writer.get_extra_info("socket")
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # not a TCP socket
        if not self.slots.take():
            if self.busy < BUSY_ANSWERERS:
                self.busy += 1
                try:
                    await self.answer_busy(reader, writer)
                finally:
                    self.busy -= 1
            else:
                writer.transport.abort()
            return
        try:
            await Connection(self, reader, writer).serve()
        except Exception:
            # The exception's type only: a traceback's locals could hold request data.
            sys.stderr.write("guard error %s\n" % type(sys.exc_info()[1]).__name__)
        finally:
            self.slots.give()

    @staticmethod
    async def answer_busy(reader, writer):
        body = b'{"error":"Service Unavailable"}'
        try:
            try:
                # Take the request head first: closing on unread data resets the answer.
                await asyncio.wait_for(reader.read(65536), 2)
            except (asyncio.TimeoutError, OSError, ValueError):
                pass
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
            await asyncio.wait_for(writer.drain(), 2)
        except (asyncio.TimeoutError, OSError):
            pass
        finally:
            writer.close()


def _exception_handler(loop, context):
    # asyncio's own reports name the exception's type only: its message or a traceback's locals
    # could hold request data.
    err = context.get("exception")
    sys.stderr.write("guard error %s\n" % (type(err).__name__ if err is not None else "asyncio"))


class Slots:
    """GUARD_MAX_CONNECTIONS for every worker together: a pipe holding one byte per free slot (the
    kernel makes taking and giving one atomic across processes); a plain count for one worker."""

    def __init__(self, limit, shared):
        self.free = limit
        self.pipe = None
        if shared:
            self.pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            os.write(self.pipe[1], b"x" * limit)  # BlockingIOError past the pipe's 64 KiB

    def take(self):
        if self.pipe is None:
            self.free -= 1
            if self.free >= 0:
                return True
            self.free += 1
            return False
        try:
            return os.read(self.pipe[0], 1) == b"x"
        except BlockingIOError:
            return False

    def give(self):
        if self.pipe is None:
            self.free += 1
        else:
            os.write(self.pipe[1], b"x")


async def serve(cfg, sock, lease, slots, parent=None):
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_exception_handler)
    server = GuardServer(cfg, loop, lease, slots)
    await server.start(sock)
    if parent is not None:
        def orphaned():  # a worker outlives its first process by a second at most
            if os.getppid() != parent:
                os._exit(0)
            loop.call_later(1, orphaned)
        orphaned()
    async with server.server:
        await server.server.serve_forever()


def main():
    try:
        cfg = Config(os.environ)
    except ValueError as err:
        sys.stderr.write("guard: %s\n" % err)
        return 2
    # One listening socket, bound before the workers fork: each accepts from it in its own loop
    # (bench/RESULTS.md: one process relays about 30,000 SSE events/s per core; a GPU pod has the cores).
    family = socket.getaddrinfo(cfg.host, cfg.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    sock = socket.create_server((cfg.host, cfg.port), family=family, backlog=1024)
    lease = Lease(cfg, cfg.runpod)
    slots = Slots(cfg.max_connections, cfg.workers > 1)
    host, port = sock.getsockname()[:2]
    sys.stderr.write("guard v%s listening on %s:%d, upstream %s:%d\n" % (GUARD_VERSION, host, port, *cfg.upstream))
    sys.stderr.flush()
    workers = []
    for _ in range(cfg.workers - 1):  # forked before any thread starts
        pid = os.fork()
        if pid == 0:
            try:
                asyncio.run(serve(cfg, sock, lease, slots, os.getppid()))
            finally:
                os._exit(1)
        workers.append(pid)
    if workers:
        def stop_workers():
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass

        def on_signal(signum, frame):
            stop_workers()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        signal.signal(signal.SIGTERM, on_signal)

        def reap():  # a worker that dies takes the guard down with it, for the start script to see
            os.wait()
            sys.stderr.write("guard error worker exited\n")
            stop_workers()
            os._exit(1)
        threading.Thread(target=reap, daemon=True).start()
    if cfg.runpod.configured():
        threading.Thread(target=lease.check_key, daemon=True).start()
    if cfg.lease_seconds or cfg.stop_at:
        sys.stderr.write("guard self-stop: lease %s, stop at %s\n" % (
            "%d s" % cfg.lease_seconds if cfg.lease_seconds else "off", cfg.stop_at or "none"))
        carried = lease.restore()
        if carried:
            sys.stderr.write(carried + "\n")
        threading.Thread(target=lease.watch, daemon=True).start()
    asyncio.run(serve(cfg, sock, lease, slots))
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
