import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname } from 'node:path';
import { describe, it } from 'node:test';
import { GUARD_PY } from './run-guard.js';

/**
 * The guard's chunked relay (Upstream.chunked in src/guard/guard.py) on the real module: vLLM's
 * chunked body arrives cut at arbitrary read boundaries; what the client receives must be the same
 * chunks (re-framed only where an extension or a split line made it necessary), trailers dropped,
 * the end seen exactly once, bytes after the end marking the connection unusable, and broken
 * framing cutting it. Seeded, so a failure reproduces.
 */
const SCRIPT = String.raw`
import asyncio, random, re, sys
sys.path.insert(0, sys.argv[1])
import guard as g

class T:
    def __init__(s): s.out = []
    def write(s, d): s.out.append(bytes(d))
    def is_closing(s): return False
    def get_write_buffer_size(s): return 0
    def abort(s): pass
    def pause_reading(s): pass
    def resume_reading(s): pass

def run(body, framed, splits):
    loop = asyncio.new_event_loop()
    up = g.Upstream(600, loop)
    up.connection_made(T())
    client = T()
    up.client, up.mode, up.left, up.framed, up.prefix = client, g.CHUNKED, 0, framed, b""
    up.partial, up.crlf, up.trailers = b"", False, -1
    pos = 0
    for cut in splits + [len(body)]:
        if cut > pos:
            up.data_received(body[pos:cut]); pos = cut
    loop.close()
    return b"".join(client.out), up.state, up.dirty

def strict(b):
    out, pos = b"", 0
    while True:
        m = re.compile(rb"([0-9a-fA-F]+)\r\n").match(b, pos)
        assert m, b[pos:pos + 20]
        n = int(m.group(1), 16); pos = m.end()
        if n == 0:
            assert b[pos:] == b"\r\n", b[pos:]
            return out
        out += b[pos:pos + n]; assert b[pos + n:pos + n + 2] == b"\r\n"; pos += n + 2

random.seed(14)
for trial in range(1500):
    chunks = [bytes(random.randrange(256) for _ in range(random.randrange(1, 40))) for _ in range(random.randrange(0, 6))]
    body, plain = b"", b""
    for c in chunks:
        body += random.choice([b"%x", b"%X", b"%04x"]) % len(c) + random.choice([b"", b";a=b", b" ;x"]) + b"\r\n" + c + b"\r\n"
        plain += c
    body += b"0\r\n" + random.choice([b"", b"x-t: 1\r\n"]) + b"\r\n"
    extra = random.choice([b"", b"HTTP"])
    body += extra
    splits = sorted(random.sample(range(1, len(body)), min(len(body) - 1, random.randrange(0, 8))))
    for framed in (True, False):
        got, state, dirty = run(body, framed, splits)
        assert state == g.DONE, (trial, body, splits, state)
        assert (strict(got) if framed else got) == plain, (trial, body, splits, got)
        assert b";" not in got.split(b"\r\n", 1)[0] or not framed
        assert dirty == bool(extra), (trial, body, splits)
for cut in range(1, 23):  # every proper prefix: never seen as ended
    assert run(b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"[:cut], True, [])[1] is None, cut
for bad in [b"zz\r\n", b"5\r\nhelloXX\r\n", b"5\r\nhello\r\n" + b"1" * 2000, b"0\r\n" + b"x: y\r\n" * 101]:
    assert run(bad, True, [])[1] == g.CUT, bad
print("ok")
`;

describe('guard chunked relay', () => {
  it('relays chunked bodies split anywhere, framing checked, trailers dropped, broken framing cut', () => {
    const run = spawnSync('python3', ['-c', SCRIPT, dirname(GUARD_PY)], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PYTHONDONTWRITEBYTECODE: '1' },
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'ok');
  });
});
