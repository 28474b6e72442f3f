import type { AppError } from '../../shared/errors.js';
import { gatewayError } from '../errors.js';

/**
 * undici failures → what the client is told. Timeouts are 504, a refused or broken connection
 * 502, a response we cannot parse (invalid headers, a CRLF-injection attempt) 502 too.
 * `kind` is the metric/log label.
 */
export function upstreamFailure(
  err: unknown,
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number },
): { error: AppError; kind: string } {
  const code = (err as { code?: string }).code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return {
        kind: 'connect_timeout',
        error: gatewayError(
          'GW_UPSTREAM_TIMEOUT',
          `the model server did not accept a connection within ${seconds(timeouts.connectMs)}`,
        ),
      };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return {
        kind: 'first_byte_timeout',
        error: gatewayError(
          'GW_UPSTREAM_TIMEOUT',
          `the model server did not start answering within ${seconds(timeouts.firstByteMs)}`,
        ),
      };
    case 'UND_ERR_BODY_TIMEOUT':
      return {
        kind: 'idle_timeout',
        error: gatewayError(
          'GW_UPSTREAM_TIMEOUT',
          `the model server went silent for ${seconds(timeouts.idleMs)}`,
        ),
      };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return {
        kind: 'connect_failed',
        error: gatewayError(
          'GW_UPSTREAM_UNAVAILABLE',
          'the model server is not reachable (connection failed); is the pod running? try `runpod-llm status`',
        ),
      };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return {
        kind: 'connection_lost',
        error: gatewayError(
          'GW_UPSTREAM_UNAVAILABLE',
          'the connection to the model server broke before the answer was complete',
        ),
      };
    default:
      // undici 7's HTTPParserError carries no `code` (only its name), so both are checked.
      if (
        code.startsWith('HPE_') ||
        (err as { name?: string }).name === 'HTTPParserError' ||
        code === 'UND_ERR_HEADERS_OVERFLOW' ||
        code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' ||
        code === 'UND_ERR_INFO'
      ) {
        return {
          kind: 'bad_response',
          error: gatewayError('GW_UPSTREAM_BAD_RESPONSE', 'the model server sent a malformed response'),
        };
      }
      return {
        kind: 'other',
        error: gatewayError('GW_UPSTREAM_UNAVAILABLE', 'the request to the model server failed'),
      };
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
