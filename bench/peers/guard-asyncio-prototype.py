#!/usr/bin/env python3
"""Prototype, for measurement only (bench/RESULTS.md "The guard's goals"): the pod
guard's hot path on asyncio, standard library only. Checks the route and the key, reads a
Content-Length body, forwards on one upstream connection per client connection, and relays the
response's chunked framing as it arrives (no re-chunking). NOT the guard: no chunked request
bodies, no framing checks, no limits, no connection cap, no lease, no logging. Never ship it.

  npm run bench -- --quick --only latency,streaming,held --systems direct,guard \
    --guard-py bench/peers/guard-asyncio-prototype.py --no-write
"""
import asyncio, hmac, os, sys

KEY = os.environ["GUARD_API_KEY"]
EXPECTED = ("Bearer " + KEY).encode()
UP_HOST, UP_PORT = os.environ["GUARD_UPSTREAM"].split("//")[1].split(":")
UP_PORT = int(UP_PORT)
ROUTES = {(b"POST", b"/v1/chat/completions"), (b"GET", b"/v1/models"), (b"GET", b"/health")}


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    first = lines[0].split(b" ")
    fields = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        fields[k.strip().lower()] = v.strip()
    return first, fields


async def handle(reader, writer):
    up = None
    try:
        while True:
            try:
                (method, target, _), fields = await read_head(reader)
            except (asyncio.IncompleteReadError, ValueError):
                return
            body = await reader.readexactly(int(fields.get(b"content-length", b"0")))
            if (method, target) not in ROUTES:
                writer.write(b'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 22\r\n\r\n{"error":"Not Found"}\n')
                continue
            if target != b"/health" and not hmac.compare_digest(fields.get(b"authorization", b""), EXPECTED):
                writer.write(b'HTTP/1.1 401 Unauthorized\r\ncontent-length: 25\r\n\r\n{"error":"Unauthorized"}\n')
                continue
            if up is None:
                up = await asyncio.open_connection(UP_HOST, UP_PORT)
            ur, uw = up
            uw.write(b"%s %s HTTP/1.1\r\nhost: vllm\r\nauthorization: Bearer %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (method, target, KEY.encode(), len(body), body))
            status_line, ufields = await read_head(ur)
            out = [b"HTTP/1.1 %s %s\r\n" % (status_line[1], b" ".join(status_line[2:]))]
            for k in (b"content-type", b"cache-control", b"content-length", b"transfer-encoding"):
                if k in ufields:
                    out.append(b"%s: %s\r\n" % (k, ufields[k]))
            out.append(b"\r\n")
            if b"content-length" in ufields:
                n = int(ufields[b"content-length"])
                writer.write(b"".join(out) + (await ur.readexactly(n) if n else b""))
            elif ufields.get(b"transfer-encoding") == b"chunked":
                writer.write(b"".join(out))
                tail = b""
                while True:
                    data = await ur.read(16384)
                    if not data:
                        return
                    writer.write(data)
                    tail = (tail + data)[-5:]
                    if tail == b"0\r\n\r\n":
                        break
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        if up is not None:
            up[1].close()
        writer.close()


async def main():
    server = await asyncio.start_server(handle, os.environ.get("GUARD_LISTEN_HOST", "127.0.0.1"), int(os.environ["GUARD_LISTEN_PORT"]), backlog=1024)
    sys.stderr.write("asyncio relay listening\n")
    async with server:
        await server.serve_forever()

asyncio.run(main())
