import type { Config } from '../config/schema.js';
import type { Clock } from '../shared/clock.js';
import { createLogger, type Logger } from '../shared/logger.js';
import { clientIpMasker } from './client-ip.js';
import { openRotatingLog, type RotatingLog } from './log-files.js';

export interface ConfiguredLogger {
  logger: Logger;
  /** The rotating file, when the logger writes one (`log_file`). */
  file: RotatingLog | undefined;
  /** Flushes and closes the file (nothing for stdout). */
  close(): Promise<void>;
}

/**
 * The logger of a gateway or watchdog process: JSON lines to `log_file` with rotation and expiry
 * (`log_max_bytes`, `log_max_files`, `log_max_age`) when set — as it is for the daemons `up`
 * starts — else to stdout as before; client addresses as `log_client_ip` says, either way.
 *
 * @example
 *   const { logger, close } = configuredLogger(config, { name: 'watchdog' });
 */
export function configuredLogger(
  config: Config,
  options: { name?: string; clock?: Clock } = {},
): ConfiguredLogger {
  const clientIp = clientIpMasker(config.log_client_ip, {
    ...(config.home === undefined ? {} : { home: config.home }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  });
  const base = {
    level: config.log_level,
    clientIp,
    ...(options.name === undefined ? {} : { name: options.name }),
  };
  if (config.log_file === undefined)
    return { logger: createLogger(base), file: undefined, close: async () => undefined };
  let reported = false;
  const file = openRotatingLog(
    config.log_file,
    { maxBytes: config.log_max_bytes, maxFiles: config.log_max_files, maxAgeMs: config.log_max_age },
    {
      onError: (err) => {
        // Never fatal: the gateway keeps serving when its log cannot be written (disk full).
        if (reported) return;
        reported = true;
        process.stderr.write(`warning: cannot write the log ${config.log_file ?? ''}: ${err.message}\n`);
      },
    },
  );
  return { logger: createLogger({ ...base, destination: file }), file, close: () => file.close() };
}
