import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import {
  GATEWAY_KEY,
  MODEL,
  POD_KEY,
  chatBody,
  startTestGateway,
  type TestGateway,
} from '../helpers/gateway.js';

const SECRET_PROMPT = 'my-confidential-prompt-7d3f';
const SECRET_COMPLETION_WORD = 'confidential'; // the stand-in echoes prompt words into the answer

describe('logs', () => {
  let gw: TestGateway;
  before(async () => {
    // 2 failed keys spend the per-client window of 2; the 3 keyless requests after it are refused.
    gw = await startTestGateway({ config: { rate_limit_requests: 2 } });
    const client = new OpenAI({ baseURL: gw.baseUrl, apiKey: GATEWAY_KEY, maxRetries: 0 });
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: SECRET_PROMPT }],
    });
    const stream = await client.chat.completions.create({
      model: MODEL,
      stream: true,
      messages: [{ role: 'user', content: SECRET_PROMPT }],
    });
    for await (const _ of stream) void _;
    await gw.api('/v1/chat/completions', {
      method: 'POST',
      json: chatBody(SECRET_PROMPT, { temperature: 'x' }),
    });
    // HTTP parsers refuse raw CR/LF in header values; a tab is the control character that gets through.
    await gw.api('/v1/models', {
      headers: {
        authorization: 'Bearer not-the-key-but-a-guess-123',
        'user-agent': 'evil\t{"event":"forged"}',
      },
    });
    await gw.api('/v1/models', {
      headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
    });
    for (let i = 0; i < 3; i++) await gw.api('/v1/models');
  });
  after(() => gw.close());

  it('never contain the gateway key, the pod key, Authorization values, prompts or completions', () => {
    const text = gw.logs.text();
    assert.ok(text.length > 0);
    for (const secret of [
      GATEWAY_KEY,
      POD_KEY,
      SECRET_PROMPT,
      SECRET_COMPLETION_WORD,
      'not-the-key-but-a-guess-123',
      Buffer.from('a:b').toString('base64'),
    ]) {
      assert.ok(!text.includes(secret), `log contains ${secret}`);
    }
  });

  it('write one access line per request with the facts an operator needs', () => {
    const access = gw.logs.lines().filter((l) => l.msg === 'request');
    assert.equal(access.length, 8);
    const first = access[0]!;
    for (const field of [
      'reqId',
      'method',
      'path',
      'status',
      'durationMs',
      'upstreamMs',
      'bytes',
      'ip',
      'keyId',
      'tokensIn',
      'tokensOut',
    ]) {
      assert.notEqual(first[field], undefined, field);
    }
    assert.equal(first.status, 200);
    assert.ok((first.bytes as number) > 0);
    const streamed = access[1]!;
    assert.notEqual(streamed.ttfbMs, undefined, 'streams log time to first byte');
  });

  it('write security events with IP, user agent and path, CR/LF stripped', () => {
    const events = gw.logs.lines().filter((l) => l.event !== undefined);
    const kinds = events.map((e) => e.event);
    assert.deepEqual(kinds, [
      'invalid_input',
      'auth_failed',
      'auth_failed',
      'rate_limit_exceeded',
      'rate_limit_exceeded',
      'rate_limit_exceeded',
    ]);
    for (const e of events) {
      assert.equal(e.ip, '127.0.0.1');
      assert.equal(e.path, '/v1/' + (e.event === 'invalid_input' ? 'chat/completions' : 'models'));
      assert.equal(typeof e.userAgent, 'string');
    }
    const forged = events.find((e) => String(e.userAgent).startsWith('evil'));
    assert.equal(forged?.userAgent, 'evil{"event":"forged"}');
    assert.equal(gw.logs.lines().filter((l) => l.event === 'forged').length, 0);
  });
});
