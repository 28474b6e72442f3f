import { openState, type StateDb } from '../../state/db.js';
import { listReadyRoutes, routesVersion } from '../../state/routes.js';
import { isAppError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import {
  type Route,
  type RouteSource,
  type StreamNonStreamingMode,
  streamsNonStreaming,
} from './route-source.js';

/*
 * Routes written by the pod manager (`runpod-llm up`) into the state database. The gateway
 * polls one integer (`routesVersion`) every `pollMs` and reloads only when it moved, so the
 * request path never touches SQLite. Until the state exists (the gateway may start first),
 * there are no routes and the poll keeps looking.
 *
 * The source only lists the ready routes (with their weight) and tells its listeners when the
 * list changed; the balancer picks among them.
 */

/** A route source that reads the manager's state. */
export interface StateRouteSource extends RouteSource {
  /** Re-reads the routes now (tests; the poll calls it too). */
  refresh(): void;
  /** The open state handle once the state exists (the usage recorder writes through it). */
  db(): StateDb | undefined;
}

export function stateRouteSource(options: {
  home: string;
  pollMs?: number;
  logger: Logger;
  streamNonStreaming?: StreamNonStreamingMode;
}): StateRouteSource {
  let state: StateDb | undefined;
  let version = -1;
  let routes: Route[] = [];
  const listeners: Array<(routes: readonly Route[]) => void> = [];
  let lastError: string | undefined;

  function open(): StateDb | undefined {
    if (state !== undefined) return state;
    try {
      state = openState({ home: options.home, mustExist: true });
      lastError = undefined;
      return state;
    } catch (err) {
      const code = isAppError(err) ? err.code : 'error';
      if (code !== lastError && code !== 'STATE_MISSING')
        options.logger.warn(
          { code, home: options.home },
          'cannot open the manager state; no routes until it can be read',
        );
      lastError = code;
      return undefined;
    }
  }

  function refresh(): void {
    const db = open();
    if (db === undefined) return;
    try {
      const now = routesVersion(db);
      if (now === version) return;
      version = now;
      const rows = listReadyRoutes(db);
      routes = rows.map((r) =>
        Object.freeze({
          id: r.routeId,
          baseUrl: r.baseUrl,
          apiKey: r.apiKey,
          model: r.model,
          streamNonStreaming: streamsNonStreaming(
            options.streamNonStreaming ?? 'auto',
            r.baseUrl,
            r.podId !== null,
          ),
          weight: r.weight,
        }),
      );
      options.logger.info(
        { routes: routes.map((r) => ({ id: r.id, model: r.model, weight: r.weight })) },
        'routes updated from the manager state',
      );
    } catch (err) {
      options.logger.warn(
        { err: (err as Error).message },
        'reading routes from the state failed; keeping the last known routes',
      );
      return;
    }
    for (const listener of listeners) listener(routes);
  }

  refresh();
  const timer = setInterval(refresh, options.pollMs ?? 1_000);
  timer.unref();

  return {
    all: () => routes,
    onChange(listener) {
      listeners.push(listener);
    },
    refresh,
    db: () => state,
    close() {
      clearInterval(timer);
      state?.close();
      state = undefined;
    },
  };
}
