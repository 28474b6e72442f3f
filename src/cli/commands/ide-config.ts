import { gatewayKeyFile } from '../../gateway/gateway-keys.js';
import { clientHost, readGatewayUrl } from '../../daemons/gateway-daemon.js';
import { AppError } from '../../shared/errors.js';
import { readTextIfExists } from '../../shared/secret-file.js';
import { openState } from '../../state/db.js';
import { listReadyRoutes } from '../../state/routes.js';
import { IDE_CLIENTS, type IdeClient, ideSnippet } from '../ide-snippets.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext, stateExists } from '../manager-context.js';
import type { IdeConfigFlags } from '../command-options.js';

/**
 * `runpod-llm ide-config continue|codegpt|kilo|openai-env`: a working snippet for the running
 * gateway (its URL, its key, the model it serves). Reads only: it never generates a key.
 *
 * The model is the one actually served: asked from the running gateway's /v1/models (with its
 * key), else from a static upstream's (UPSTREAM_URL), else the ready pod's in the state, else
 * the configured name (with a warning that nothing could be asked).
 */
export async function runIdeConfigCommand(
  client: string,
  flags: IdeConfigFlags,
  io: CliIo,
  fetchFn: typeof fetch = fetch,
): Promise<number> {
  if (!(IDE_CLIENTS as readonly string[]).includes(client)) {
    throw new AppError('CLI_USAGE', `unknown client "${client}"`, {
      hint: `choose one of: ${IDE_CLIENTS.join(', ')}`,
    });
  }
  const ctx = loadManagerContext(io, {}, flags.config);
  const { config } = ctx;
  const host = clientHost(config.proxy_host);
  const baseUrl =
    readGatewayUrl(ctx.home) ??
    `${config.use_https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.proxy_port}/v1`;
  let model = ctx.settings.servedModelName;
  let fromState: string | undefined;
  if (stateExists(ctx.home)) {
    const state = openState({ home: ctx.home });
    try {
      fromState = listReadyRoutes(state)[0]?.model ?? undefined;
    } finally {
      state.close();
    }
  }
  let apiKey: string;
  if (config.auth === 'none') apiKey = 'none';
  else if (config.api_keys.length > 0) apiKey = '<your GATEWAY_API_KEYS key>';
  else {
    const stored = readTextIfExists(gatewayKeyFile(ctx.home))?.split('\n')[0]?.trim();
    if (stored === undefined || stored === '') {
      line(
        io.stderr,
        'warning: no gateway key yet: `runpod-llm up` generates one; the snippet shows a placeholder',
      );
      apiKey = '<gateway key from `runpod-llm up`>';
    } else apiKey = stored;
  }
  const gatewayKey =
    config.auth === 'none'
      ? undefined
      : (config.api_keys[0] ?? (apiKey.startsWith('<') ? undefined : apiKey));
  const served =
    (readGatewayUrl(ctx.home) === undefined ? undefined : await servedModel(fetchFn, baseUrl, gatewayKey)) ??
    (config.upstream.url === undefined
      ? undefined
      : await servedModel(fetchFn, config.upstream.url, config.upstream.api_key)) ??
    fromState;
  if (served === undefined)
    line(
      io.stderr,
      `warning: neither the gateway nor an upstream answered /v1/models; the snippet names the configured model ${model}`,
    );
  model = served ?? model;
  line(io.stdout, ideSnippet(client as IdeClient, { baseUrl, apiKey, model }));
  return 0;
}

/** The first model id an OpenAI-compatible server lists, or undefined when it cannot be asked. */
async function servedModel(
  fetchFn: typeof fetch,
  base: string,
  key: string | undefined,
): Promise<string | undefined> {
  try {
    const res = await fetchFn(`${base.replace(/\/+$/, '')}/models`, {
      headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
      signal: AbortSignal.timeout(3_000),
    });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const body = (await res.json()) as { data?: Array<{ id?: unknown }> };
    const id = body.data?.[0]?.id;
    return typeof id === 'string' && id !== '' ? id : undefined;
  } catch {
    return undefined;
  }
}
