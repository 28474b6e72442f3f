import { gatewayKeyFile } from '../../gateway/gateway-keys.js';
import { clientHost, readGatewayUrl } from '../../lifecycle/services.js';
import { AppError } from '../../shared/errors.js';
import { readTextIfExists } from '../../shared/secret-file.js';
import { openState } from '../../state/db.js';
import { listReadyRoutes } from '../../state/routes.js';
import { IDE_CLIENTS, type IdeClient, ideSnippet } from '../ide-snippets.js';
import { type CliIo, line } from '../io.js';
import { loadManagerContext, stateExists } from '../manager-context.js';

/**
 * `runpod-llm ide-config continue|codegpt|kilo|openai-env`: a working snippet for the running
 * gateway (its URL, its key, the model it serves). Reads only: it never generates a key.
 */
export async function runIdeConfigCommand(client: string, flags: { config?: string }, io: CliIo): Promise<number> {
  if (!(IDE_CLIENTS as readonly string[]).includes(client)) {
    throw new AppError('CLI_USAGE', `unknown client "${client}"`, { hint: `choose one of: ${IDE_CLIENTS.join(', ')}` });
  }
  const ctx = loadManagerContext(io, {}, flags.config);
  const { config } = ctx;
  const host = clientHost(config.proxy_host);
  const baseUrl = readGatewayUrl(ctx.home) ?? `${config.use_https ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.proxy_port}/v1`;
  let model = ctx.settings.servedModelName;
  if (stateExists(ctx.home)) {
    const state = openState({ home: ctx.home });
    try {
      model = listReadyRoutes(state)[0]?.model ?? model;
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
      line(io.stderr, 'warning: no gateway key yet: `runpod-llm up` generates one; the snippet shows a placeholder');
      apiKey = '<gateway key from `runpod-llm up`>';
    } else apiKey = stored;
  }
  line(io.stdout, ideSnippet(client as IdeClient, { baseUrl, apiKey, model }));
  return 0;
}
