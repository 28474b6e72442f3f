import type { FastifyInstance, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { gatewayError } from './errors.js';

/**
 * Deepest object/array nesting a body may have. OpenAI bodies (tool schemas included) stay far
 * below it; V8 parses any depth without complaint, but the upstream's parser may not (Python's
 * json recurses) and every later walk over the body would pay for it.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * The only body parser: `application/json`, strict UTF-8, nesting at most {@link MAX_JSON_DEPTH},
 * prototype-poisoning refused (`__proto__` and `constructor.prototype` keys are a 400, not
 * silently dropped). The raw bytes are kept so a valid body is forwarded byte-for-byte, without
 * re-serialising it; a UTF-8 byte order mark is dropped from them, because the decoder skips it
 * and the upstream must receive exactly the JSON that was validated.
 * Fastify enforces `bodyLimit` for chunked bodies too (counting bytes as they arrive).
 */
export function installJsonParser(app: FastifyInstance, bodyLimit: number): void {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'buffer', bodyLimit },
    (request: FastifyRequest, raw: string | Buffer, done) => {
      let buf = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) buf = buf.subarray(3);
      request.rawBody = buf;
      if (buf.length === 0)
        return done(
          gatewayError('GW_INVALID_JSON', 'the request body is empty; send a JSON object'),
          undefined,
        );
      if (nestedDeeperThan(buf, MAX_JSON_DEPTH))
        return done(
          gatewayError('GW_INVALID_JSON', `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`),
          undefined,
        );
      let text: string;
      try {
        text = decoder.decode(buf);
      } catch {
        return done(gatewayError('GW_INVALID_JSON', 'the request body is not valid UTF-8'), undefined);
      }
      try {
        done(null, sjson.parse(text, null, { protoAction: 'error', constructorAction: 'error' }));
      } catch (err) {
        const message = (err as Error).message;
        if (/forbidden prototype property/i.test(message)) {
          return done(
            gatewayError(
              'GW_FORBIDDEN_PROPERTY',
              'the body contains a "__proto__" or "constructor.prototype" key, which is refused',
            ),
            undefined,
          );
        }
        if (err instanceof RangeError)
          return done(gatewayError('GW_INVALID_JSON', 'the JSON body is nested too deeply'), undefined);
        return done(
          gatewayError('GW_INVALID_JSON', `the request body is not valid JSON (${message.slice(0, 120)})`),
          undefined,
        );
      }
    },
  );
}

/** One pass over the bytes, strings skipped: true as soon as `[`/`{` nesting exceeds `limit`. */
function nestedDeeperThan(buf: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}
