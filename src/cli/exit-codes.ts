import { errorCodeEntry, EXIT } from '../shared/error-codes.js';
import { isAppError } from '../shared/errors.js';

export { EXIT } from '../shared/error-codes.js';

/**
 * The exit code for whatever ended a command: an {@link AppError}'s comes from the error-code
 * registry (`shared/error-codes.ts`, where the numbers are listed), anything else is a bug (1).
 *
 * @example
 *   exitCodeFor(new AppError('RUNPOD_NO_CAPACITY', '…')); // 5
 *   exitCodeFor(new TypeError('x is undefined')); // 1
 */
export function exitCodeFor(err: unknown): number {
  if (!isAppError(err)) return EXIT.INTERNAL;
  return errorCodeEntry(err.code).exit;
}
