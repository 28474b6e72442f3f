import { AppError } from './errors.js';

/** Waits `ms`; a `signal` abort ends the wait early with `LIFECYCLE_INTERRUPTED`. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) return reject(interrupted());
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(interrupted());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export function interrupted(): AppError {
  return new AppError('LIFECYCLE_INTERRUPTED', 'interrupted (SIGINT/SIGTERM)', {
    hint: 'run the command again; `runpod-llm status` shows what is running',
  });
}
