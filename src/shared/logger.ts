import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino blanks out wherever they appear. We never put secrets in log objects on purpose;
 * this is the second line of defence (tests grep captured logs for the secrets they used).
 */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.cookie',
  '*.headers.cookie',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'key',
  '*.key',
  'token',
  '*.token',
  'password',
  '*.password',
];

/**
 * The top-level paths of `REDACT_PATHS`. For lines the code builds field by field from flat
 * values (the access log): the wildcard paths make pino walk every key of every line (≈ 10 µs a
 * line), and a flat line has no nested objects for them to find.
 */
export const TOP_LEVEL_REDACT_PATHS = REDACT_PATHS.filter((path) => !path.startsWith('*.'));

/**
 * A child of `logger` that redacts only the top-level paths: for hot-path lines whose every
 * field is a flat value chosen by the code (never a request object or headers). Every other
 * line keeps the full redaction of `createLogger`.
 */
export function flatLineLogger(logger: Logger): Logger {
  return logger.child({}, { redact: { paths: TOP_LEVEL_REDACT_PATHS, censor: '[redacted]' } });
}

export interface LoggerOptions {
  level?: string;
  /** Where lines go; default stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
  name?: string;
  /**
   * Applied to every `ip` field (`log_client_ip`: truncate or hash client addresses in what is
   * kept; src/logs/client-ip.ts). Children inherit it.
   */
  clientIp?: ((ip: unknown) => unknown) | undefined;
}

/**
 * A pino JSON logger with secret redaction.
 *
 * @example
 *   const log = createLogger({ level: 'info', destination: pino.destination({ dest: file, sync: false }) });
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const opts = {
    level: options.level ?? 'info',
    base: options.name === undefined ? null : { name: options.name },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    ...(options.clientIp === undefined ? {} : { serializers: { ip: options.clientIp } }),
  };
  return options.destination === undefined ? pino(opts) : pino(opts, options.destination);
}

/** A logger that writes nothing (for components under test that do not inspect logs). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const CONTROL_CHARS = /[\r\n\u0000-\u001f\u007f]/g;

/**
 * Removes CR/LF and other control characters from a user-supplied value before it is logged
 * (log injection), and caps its length.
 */
export function cleanForLog(value: string | undefined, max = 256): string | undefined {
  if (value === undefined) return undefined;
  const cleaned = value.replace(CONTROL_CHARS, '');
  return cleaned.length > max ? `${cleaned.slice(0, max)}…` : cleaned;
}
