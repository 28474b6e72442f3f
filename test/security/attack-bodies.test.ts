import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MAX_JSON_DEPTH } from '../../src/gateway/body-parser.js';
import { MODEL, startTestGateway, type TestGateway } from '../helpers/gateway.js';
import {
  assertEnvelope,
  assertLogsClean,
  assertRawRefusal,
  assertServing,
  assertStillForwarding,
  AUTH,
  marker,
  rawRequest,
} from './attack-helpers.js';

/**
 * Attack battery, request bodies (SECURITY.md "Attack battery"): oversized and chunked
 * oversized bodies, deep nesting, huge arrays, invalid UTF-8, prototype poisoning, wrong
 * content types. None of these may reach the upstream.
 */
describe('attack battery: request bodies', () => {
  let gw: TestGateway;
  let port: number;
  const prompt = marker('bodies');
  const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    model: MODEL,
    messages: [{ role: 'user', content: prompt }],
    ...extra,
  });

  before(async () => {
    // max_content_length is off by default (the model's context decides); set here to attack it.
    gw = await startTestGateway({ config: { rate_limit_requests: 100_000, max_content_length: 50_000 } });
    port = Number(new URL(gw.url).port);
  });
  after(async () => {
    await assertStillForwarding(gw);
    assertLogsClean(gw, [prompt]);
    await gw.close();
  });

  /** Sends `body` (bytes as given) and expects a refusal that never reached the pod. */
  async function refused(
    body: string | Buffer,
    status: number,
    code: string,
    options: { contentType?: string | null; path?: string } = {},
  ): Promise<void> {
    const forwarded = gw.pod!.requests.length;
    const headers = new Headers();
    if (options.contentType !== null) headers.set('content-type', options.contentType ?? 'application/json');
    const res = await gw.api(options.path ?? '/v1/chat/completions', { method: 'POST', headers, body });
    assert.equal(res.status, status, await res.clone().text());
    assertEnvelope(await res.text(), code);
    assert.equal(gw.pod!.requests.length, forwarded, 'nothing reached the upstream');
    await assertServing(gw);
  }

  describe('size', () => {
    it('a declared Content-Length over 1 MiB → 413 before the body is read', async () => {
      const res = await rawRequest(
        port,
        `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{`,
        { firstResponse: true },
      );
      assertRawRefusal(res, 413, 'request_too_large');
      await assertServing(gw);
    });
    it('a 2 MiB body → 413', () =>
      refused(JSON.stringify(chat({ pad: 'x'.repeat(2 * 1024 * 1024) })), 413, 'request_too_large'));
    it('a chunked body growing past 1 MiB (no Content-Length) → 413', async () => {
      const chunk = 'x'.repeat(64 * 1024);
      const parts = [
        `POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n${AUTH}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      ];
      for (let i = 0; i < 40; i++) parts.push(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      parts.push('0\r\n\r\n');
      const res = await rawRequest(port, parts, { firstResponse: true, timeoutMs: 10_000 });
      assertRawRefusal(res, 413, 'request_too_large');
      await assertServing(gw);
    });
    it('50,000 messages (over 1 MiB) → 413', () =>
      refused(
        JSON.stringify({
          model: MODEL,
          messages: Array.from({ length: 50_000 }, () => ({ role: 'user', content: 'aaaaaaaaaaaaaaa' })),
        }),
        413,
        'request_too_large',
      ));
  });

  describe('nesting and huge arrays', () => {
    it('arrays nested 500,000 deep in an unknown field → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}"}],"x":${'['.repeat(500_000)}${']'.repeat(500_000)}}`,
        400,
        'invalid_json',
      ));
    it('objects nested 100,000 deep → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}"}],"x":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
        400,
        'invalid_json',
      ));
    it(`nesting just past ${MAX_JSON_DEPTH} levels → 400, while a realistic tool schema passes`, async () => {
      await refused(
        `{"model":"${MODEL}","messages":[],"x":${'['.repeat(MAX_JSON_DEPTH)}${']'.repeat(MAX_JSON_DEPTH)}}`,
        400,
        'invalid_json',
      );
      let schema: Record<string, unknown> = { type: 'string' };
      for (let i = 0; i < 20; i++) schema = { type: 'object', properties: { child: schema } };
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chat({ tools: [{ type: 'function', function: { name: 'f', parameters: schema } }] }),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
    });
    it('5,000 messages (under 1 MiB, over max_messages) → 400 naming messages', () =>
      refused(
        JSON.stringify({
          model: MODEL,
          messages: Array.from({ length: 5000 }, () => ({ role: 'user', content: '' })),
        }),
        400,
        'invalid_request',
      ));
    it('3,000 embedding inputs → 400 naming input', () =>
      refused(
        JSON.stringify({ model: MODEL, input: Array.from({ length: 3000 }, () => 'a') }),
        400,
        'invalid_request',
        { path: '/v1/embeddings' },
      ));
    it('one message content over 50,000 bytes → 400 content_too_long', () =>
      refused(
        JSON.stringify({
          model: MODEL,
          messages: [{ role: 'user', content: `${prompt}${'é'.repeat(30_000)}` }],
        }),
        400,
        'content_too_long',
      ));
  });

  describe('encoding', () => {
    const wrap = (bytes: number[]): Buffer =>
      Buffer.concat([
        Buffer.from(`{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}`),
        Buffer.from(bytes),
        Buffer.from('"}]}'),
      ]);
    it('invalid UTF-8 bytes → 400', () => refused(wrap([0xc3, 0x28, 0xff]), 400, 'invalid_json'));
    it('an overlong UTF-8 encoding of "/" → 400', () => refused(wrap([0xc0, 0xaf]), 400, 'invalid_json'));
    it('a UTF-8-encoded surrogate half (CESU-8) → 400', () =>
      refused(wrap([0xed, 0xa0, 0x80]), 400, 'invalid_json'));
    it('UTF-16 with a JSON content type → 400', () =>
      refused(Buffer.from(JSON.stringify(chat()), 'utf16le'), 400, 'invalid_json', {
        contentType: 'application/json; charset=utf-16',
      }));
    it('a byte order mark is dropped: the upstream gets exactly the validated JSON', async () => {
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(chat()))]),
      });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.equal(gw.pod!.requests.at(-1)?.body.charCodeAt(0), '{'.charCodeAt(0));
    });
  });

  describe('prototype poisoning', () => {
    it('"__proto__" at the top level → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}"}],"__proto__":{"isAdmin":true}}`,
        400,
        'forbidden_property',
      ));
    it('"__proto__" inside a message → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}","__proto__":{"x":1}}]}`,
        400,
        'forbidden_property',
      ));
    it('"__proto__" spelled with a unicode escape → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}"}],"\\u005f_proto__":{"x":1}}`,
        400,
        'forbidden_property',
      ));
    it('"constructor": {"prototype": …} → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"${prompt}"}],"constructor":{"prototype":{"x":1}}}`,
        400,
        'forbidden_property',
      ));
    it('after all of them, no object in this process was polluted', () => {
      assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
      assert.equal(({} as Record<string, unknown>).x, undefined);
    });
  });

  describe('content types and shapes', () => {
    const json = (): string => JSON.stringify(chat());
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=b',
      'application/json-patch+json',
      'text/json',
      'application/json\tx',
    ]) {
      it(`Content-Type ${JSON.stringify(type)} → 415`, () =>
        refused(json(), 415, 'unsupported_media_type', { contentType: type }));
    }
    it('no Content-Type at all → 415', () =>
      refused(json(), 415, 'unsupported_media_type', { contentType: null }));
    it('a JSON array instead of an object → 400', () => refused('[1,2,3]', 400, 'invalid_request'));
    it('a number where max_tokens belongs → 400 that says why, not "required"', async () => {
      const res = await gw.api('/v1/chat/completions', {
        method: 'POST',
        json: chat({ max_tokens: 'lots' }),
      });
      assert.equal(res.status, 400);
      const envelope = assertEnvelope(await res.text(), 'invalid_request');
      assert.equal(envelope.error.param, 'max_tokens');
      assert.doesNotMatch(envelope.error.message, /required/);
    });
    it('1e309 (Infinity after parsing) for max_tokens → 400', () =>
      refused(
        `{"model":"${MODEL}","messages":[{"role":"user","content":"x"}],"max_tokens":1e309}`,
        400,
        'invalid_request',
      ));
  });
});
