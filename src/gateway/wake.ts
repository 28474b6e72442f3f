import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logger.js';
import { requestWake } from '../state/wake-requests.js';
import { gatewayError } from './errors.js';
import type { Balancer } from './upstream/balancer.js';
import type { Route } from './upstream/route-source.js';
import type { StateRouteSource } from './upstream/state-route-source.js';

/*
 * Wake on request (scale to zero): with no ready pod, the gateway writes a wake request into the
 * manager's state — one row however many requests arrive, the watchdog starts the pod — and
 * either answers 503 `model_waking` with Retry-After at once or holds the request up to
 * `waitMs` while polling for a ready route.
 */

/** Waits for a pod when no route is ready. */
export interface WakeControl {
  /** A route once one is ready within the wait, else throws GW_MODEL_WAKING; stops waiting once `signal` is aborted (the client left). */
  wakeFor(
    model: string | undefined,
    balancer: Balancer,
    signal: { readonly aborted: boolean },
  ): Promise<Route>;
}

export function stateWake(
  routes: StateRouteSource,
  options: { waitMs: number; pollMs?: number; logger: Logger; now: () => number },
): WakeControl {
  return {
    async wakeFor(model, balancer, signal) {
      const db = routes.db();
      if (db !== undefined) {
        try {
          const { created } = requestWake(db, options.now());
          if (created)
            options.logger.info(
              { event: 'wake_requested' },
              'no pod is ready: asked the manager to start one',
            );
        } catch (err) {
          options.logger.warn(
            { err: (err as Error).message },
            'could not write the wake request to the state',
          );
        }
      }
      const deadline = options.now() + options.waitMs;
      while (options.now() < deadline && !signal.aborted) {
        await sleep(options.pollMs ?? 500, undefined, { ref: false }).catch(() => undefined);
        routes.refresh();
        const route = balancer.pick(model);
        if (route !== undefined) return route;
      }
      throw gatewayError(
        'GW_MODEL_WAKING',
        'the model is starting: a pod is being woken up; retry in a moment',
        { headers: { 'retry-after': '30' } },
      );
    },
  };
}
