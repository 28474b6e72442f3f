import type { Config } from '../config/schema.js';
import { AppError } from '../shared/errors.js';
import { emptyRouteSource, type RouteSource, staticRouteSource } from './upstream/route-source.js';

/**
 * Picks the route source from configuration: a static upstream when UPSTREAM_URL (or the seed's
 * RUNPOD_ENDPOINT) is set; otherwise the routes the pod manager writes into its state.
 */
export function routeSourceFor(config: Config, stateSource?: (config: Config) => RouteSource): { routes: RouteSource; description: string } {
  const { url, api_key: apiKey, source } = config.upstream;
  if (source === 'static' || (source === 'auto' && url !== undefined)) {
    if (url === undefined) throw new AppError('CONFIG_INVALID', 'upstream.source is "static" but no upstream URL is set', { hint: 'set UPSTREAM_URL to an OpenAI-compatible base ending in /v1' });
    return { routes: staticRouteSource(url, apiKey), description: `static upstream ${url}` };
  }
  if (stateSource !== undefined) return { routes: stateSource(config), description: `routes from the manager state in ${config.home ?? ''}` };
  if (source === 'state') {
    throw new AppError('CONFIG_INVALID', 'upstream.source is "state" but this build has no state route source', { hint: 'set UPSTREAM_URL instead' });
  }
  return { routes: emptyRouteSource(), description: 'no upstream yet (set UPSTREAM_URL, or start a pod with `runpod-llm up`)' };
}
