import type { FastifyInstance, FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import { gatewayError } from './errors.js';

/**
 * The only body parser: `application/json`, strict UTF-8, prototype-poisoning refused
 * (`__proto__` and `constructor.prototype` keys are a 400, not silently dropped). The raw bytes
 * are kept so a valid body is forwarded byte-for-byte, without re-serialising it.
 * Fastify enforces `bodyLimit` for chunked bodies too (counting bytes as they arrive).
 */
export function installJsonParser(app: FastifyInstance, bodyLimit: number): void {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit }, (request: FastifyRequest, raw: string | Buffer, done) => {
    const buf = typeof raw === 'string' ? Buffer.from(raw) : raw;
    request.rawBody = buf;
    if (buf.length === 0) return done(gatewayError('GW_INVALID_JSON', 'the request body is empty; send a JSON object'), undefined);
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
        return done(gatewayError('GW_FORBIDDEN_PROPERTY', 'the body contains a "__proto__" or "constructor.prototype" key, which is refused'), undefined);
      }
      if (err instanceof RangeError) return done(gatewayError('GW_INVALID_JSON', 'the JSON body is nested too deeply'), undefined);
      return done(gatewayError('GW_INVALID_JSON', `the request body is not valid JSON (${message.slice(0, 120)})`), undefined);
    }
  });
}
