import type { Config } from '../config/schema.js';
import { systemClock } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { statePodInfo } from './pod-info.js';
import { stateWake, type WakeControl } from './wake.js';
import type { Logger } from '../shared/logger.js';
import { createUsageRecorder, type UsageSink } from './usage-recorder.js';
import { type RouteSource, staticRouteSource, streamsNonStreaming } from './upstream/route-source.js';
import { stateRouteSource } from './upstream/state-route-source.js';

/**
 * Picks the route source from configuration: a static upstream when UPSTREAM_URL (or the original Python tool's
 * RUNPOD_ENDPOINT) is set; otherwise the routes the pod manager writes into its state, with
 * usage written back for the watchdog.
 */
export function routeSourceFor(
  config: Config,
  logger: Logger,
): {
  routes: RouteSource;
  usage: UsageSink | undefined;
  podInfo: (() => unknown) | undefined;
  wake: WakeControl | undefined;
  description: string;
} {
  const { url, api_key: apiKey, source } = config.upstream;
  if (source === 'static' || (source === 'auto' && url !== undefined)) {
    if (url === undefined)
      throw new AppError('CONFIG_INVALID', 'upstream.source is "static" but no upstream URL is set', {
        hint: 'set UPSTREAM_URL to an OpenAI-compatible base ending in /v1',
      });
    return {
      routes: staticRouteSource(
        url,
        apiKey,
        undefined,
        streamsNonStreaming(config.upstream.stream_non_streaming, url, false),
      ),
      usage: undefined,
      podInfo: undefined,
      wake: undefined,
      description: `static upstream ${url}`,
    };
  }
  const home = config.home as string;
  const routes = stateRouteSource({ home, logger, streamNonStreaming: config.upstream.stream_non_streaming });
  const usage = createUsageRecorder({ db: () => routes.db(), logger });
  const wake = config.wake_on_request
    ? stateWake(routes, { waitMs: config.wake_wait_s * 1000, logger, now: () => systemClock.now() })
    : undefined;
  return {
    routes,
    usage,
    podInfo: statePodInfo(() => routes.db(), systemClock),
    wake,
    description: `routes from the manager state in ${home}`,
  };
}
