import type { IncomingMessage, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type GatewayErrorCode } from '../shared/error-codes.js';
import type { Logger } from '../shared/logger.js';
import { shouldRetryHeader } from './errors.js';
import type { GatewayMetrics } from './metrics/gateway-metrics.js';

/*
 * Answers for what never reaches a route: bytes Node's HTTP parser refuses (request smuggling
 * shapes such as Content-Length with Transfer-Encoding, duplicate Content-Length, obs-fold, bare
 * CR, unknown methods), headers over the size limit, clients too slow to finish their request,
 * CONNECT (Node hands those sockets to a 'connect' listener or drops them), and URLs the router
 * cannot decode (malformed percent-encoding).
 *
 * Fastify's default answers have their own body shape (one echoes the URL) and no security
 * headers and are never logged; here every such
 * answer is the OpenAI envelope with the same security headers as any other response, and one
 * security event line (client IP and the parser's error code; never the raw bytes, which may
 * hold an Authorization header).
 */

/** What the client-error handler reports to. */
export interface ClientErrorDeps {
  logger: Logger;
  metrics: GatewayMetrics;
  headers: Readonly<Record<string, string>>;
}

interface Answer {
  status: number;
  code: string;
  message: string;
  event: string;
}

/** Status and OpenAI code from the registry, so these answers match every other one. */
function answerFor(code: GatewayErrorCode, message: string, event: string): Answer {
  const entry = ERROR_CODES[code];
  return { status: entry.http, code: entry.openaiCode, message, event };
}

/** The envelope's body for a registry code (none of these answers names a `param`). */
function envelope(code: GatewayErrorCode, message: string): string {
  const entry = ERROR_CODES[code];
  return JSON.stringify({ error: { message, type: entry.openaiType, param: null, code: entry.openaiCode } });
}

function classify(err: NodeJS.ErrnoException): Answer & { registry: GatewayErrorCode } {
  switch (err.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        registry: 'GW_REQUEST_TIMEOUT',
        ...answerFor(
          'GW_REQUEST_TIMEOUT',
          'the request was not received in time (headers_timeout_ms / request_timeout_ms)',
          'request_timeout',
        ),
      };
    case 'HPE_HEADER_OVERFLOW':
      return {
        registry: 'GW_HEADERS_TOO_LARGE',
        ...answerFor(
          'GW_HEADERS_TOO_LARGE',
          'the request line and headers are larger than the gateway accepts (16 KiB)',
          'request_too_large',
        ),
      };
    default:
      return {
        registry: 'GW_MALFORMED_REQUEST',
        ...answerFor(
          'GW_MALFORMED_REQUEST',
          'the request is not valid HTTP/1.1 (refused by the parser)',
          'invalid_input',
        ),
      };
  }
}

/** Serialises one complete error response; `Connection: close` because the socket ends next. */
function rawResponse(
  deps: ClientErrorDeps,
  registry: GatewayErrorCode,
  message: string,
  extra: Record<string, string> = {},
): string {
  const answer = ERROR_CODES[registry];
  const body = envelope(registry, message);
  const retry = shouldRetryHeader(answer.http, answer.openaiCode);
  const headers = {
    ...deps.headers,
    ...extra,
    ...(retry === undefined ? {} : { 'x-should-retry': retry }),
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
  let head = `HTTP/1.1 ${answer.http} ${STATUS_CODES[answer.http] ?? ''}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}\r\n${body}`;
}

/** Fastify's `clientErrorHandler` (called with the server's socket). */
export function createClientErrorHandler(deps: ClientErrorDeps) {
  return function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const answer = classify(err);
    deps.metrics.requests.inc({ route: 'other', status: String(answer.status) });
    const ip = (socket as Duplex & { remoteAddress?: string }).remoteAddress;
    deps.logger.warn(
      { event: answer.event, ip, status: answer.status, code: answer.code, parserCode: err.code },
      'security event',
    );
    // A response already under way (its headers sent) must not get a second status line in the
    // middle of its body: Node's own handler checks the same before answering.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && inFlight?.headersSent !== true)
      socket.write(rawResponse(deps, answer.registry, answer.message));
    socket.destroy();
  };
}

/**
 * HTTP/1.1 requires exactly one `Host` header (RFC 9112 section 3.2). Node would refuse a request
 * without one itself, with an empty-bodied 400; with Node's check off (`requireHostHeader:
 * false`) this wrapper answers it like every other refusal: the envelope, the security headers,
 * a security event, and the connection closed.
 */
export function requireHostHeader(
  deps: ClientErrorDeps,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
) {
  return function onRequest(req: IncomingMessage, res: ServerResponse): void {
    // rawHeaders, not headersDistinct (which builds an object of every header on every request).
    let hosts = 0;
    const raw = req.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    }
    if (hosts === 1 || (hosts === 0 && req.httpVersion !== '1.1')) {
      handler(req, res);
      return;
    }
    const answer = answerFor(
      'GW_INVALID_HOST',
      hosts === 0 ? 'an HTTP/1.1 request needs a Host header' : 'a request may carry one Host header only',
      'invalid_input',
    );
    deps.metrics.requests.inc({ route: 'other', status: String(answer.status) });
    deps.logger.warn(
      { event: answer.event, ip: req.socket.remoteAddress, status: answer.status, code: answer.code },
      'security event',
    );
    const body = envelope('GW_INVALID_HOST', answer.message);
    res.shouldKeepAlive = false;
    res.writeHead(answer.status, {
      ...deps.headers,
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      connection: 'close',
    });
    res.end(body);
  };
}

/** The server's 'connect' listener: CONNECT is not a proxy method here; answer 405 and close. */
export function createConnectHandler(deps: ClientErrorDeps) {
  return function onConnect(req: IncomingMessage, socket: Duplex): void {
    socket.on('error', () => undefined);
    const answer = answerFor(
      'GW_METHOD_NOT_ALLOWED',
      'method CONNECT is not allowed; the gateway is not a proxy',
      'invalid_input',
    );
    deps.metrics.requests.inc({ route: 'other', status: String(answer.status) });
    deps.logger.warn(
      {
        event: answer.event,
        ip: req.socket.remoteAddress,
        method: 'CONNECT',
        status: answer.status,
        code: answer.code,
      },
      'security event',
    );
    if (socket.writable)
      socket.end(rawResponse(deps, 'GW_METHOD_NOT_ALLOWED', answer.message, { allow: 'GET, POST, OPTIONS' }));
    else socket.destroy();
  };
}

/**
 * Fastify's `frameworkErrors`: URLs the router cannot decode (`/v1/models%`, overlong UTF-8
 * escapes) and over-long path parameters, answered before any hook runs. The URL is not echoed.
 */
export function createFrameworkErrorHandler(deps: ClientErrorDeps) {
  return function onFrameworkError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    const message =
      err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'a URL path segment is too long'
        : 'the URL is not valid (malformed percent-encoding)';
    const answer = answerFor('GW_INVALID_REQUEST', message, 'invalid_input');
    deps.metrics.requests.inc({ route: 'other', status: String(answer.status) });
    deps.logger.warn(
      {
        event: answer.event,
        reqId: request.id,
        ip: request.ip,
        method: request.method,
        status: answer.status,
        code: answer.code,
        parserCode: err.code,
      },
      'security event',
    );
    void reply
      .code(answer.status)
      .headers(deps.headers)
      .type('application/json; charset=utf-8')
      .send(envelope('GW_INVALID_REQUEST', message));
  };
}
