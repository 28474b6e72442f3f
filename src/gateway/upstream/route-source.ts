/*
 * Where requests go. The upstream URL comes only from configuration or the manager's state,
 * never from the request (the SSRF class of bugs in LiteLLM and Portkey came from
 * request-controlled base URLs).
 */

/** One place requests can go: a pod (or the static upstream) and its key. */
export interface Route {
  /** Stable id (pod id, or `static`). */
  id: string;
  /** OpenAI-compatible base ending in `/v1`, e.g. `https://abc-8000.proxy.runpod.net/v1`. */
  baseUrl: string;
  /** Bearer key the gateway adds upstream (the pod's own vLLM key). Never logged. */
  apiKey: string | undefined;
  /** Served model name, when known. */
  model: string | undefined;
  /**
   * The route passes a proxy that ends requests silent for 100 s (RunPod's pod URL, Cloudflare's
   * 524): non-streamed chat and completions travel streamed and are assembled (stream-assembly.ts).
   */
  streamNonStreaming?: boolean;
  /**
   * Share of the traffic relative to the other routes (default 1; the manager's `routes.weight`):
   * the balancer compares requests in flight per unit of weight, and breaks ties in proportion.
   */
  weight?: number;
}

/**
 * The routes there are. A source only lists them and says when the list changes; the
 * {@link Balancer} alone picks among them.
 */
export interface RouteSource {
  /** Every route ready for traffic now. */
  all(): readonly Route[];
  /**
   * Calls `listener` with the new list each time it changes (the gateway then drops the pools
   * and health entries of routes that are gone). Absent: the list never changes.
   */
  onChange?(listener: (routes: readonly Route[]) => void): void;
  close?(): Promise<void> | void;
}

/** One fixed upstream from configuration (UPSTREAM_URL / RUNPOD_ENDPOINT). */
export function staticRouteSource(
  baseUrl: string,
  apiKey?: string,
  model?: string,
  streamNonStreaming = false,
): RouteSource {
  const route: Route = Object.freeze({
    id: 'static',
    baseUrl: baseUrl.replace(/\/+$/, ''),
    apiKey,
    model,
    streamNonStreaming,
  });
  const routes = Object.freeze([route]);
  return { all: () => routes };
}

/** `upstream.stream_non_streaming`: `auto`, `always` or `never`. */
export type StreamNonStreamingMode = 'auto' | 'always' | 'never';

/**
 * Whether non-streamed requests on a route travel streamed. `auto`: on for a route to one of the
 * manager's pods (its pod URL comes from RUNPOD_POD_URL_TEMPLATE: RunPod's proxy, or the
 * emulator's stand-in for it, which models the same limit) and for any URL on
 * `*.proxy.runpod.net`; off otherwise (a direct TCP port, a local vLLM).
 */
export function streamsNonStreaming(mode: StreamNonStreamingMode, url: string, isPod: boolean): boolean {
  if (mode !== 'auto') return mode === 'always';
  if (isPod) return true;
  try {
    return new URL(url).hostname.toLowerCase().endsWith('.proxy.runpod.net');
  } catch {
    return false;
  }
}
