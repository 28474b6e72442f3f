/**
 * Working configuration for the IDE assistants people use with a private OpenAI-compatible
 * endpoint. Continue and the OpenAI SDKs take text; CodeGPT and Kilo Code are set in their
 * settings panel, so for those the snippet is the exact fields to fill in.
 */
export const IDE_CLIENTS = ['continue', 'codegpt', 'kilo', 'openai-env'] as const;
export type IdeClient = (typeof IDE_CLIENTS)[number];

export interface IdeTarget {
  /** Gateway base URL ending in /v1. */
  baseUrl: string;
  /** Gateway key (or a placeholder when none exists yet). */
  apiKey: string;
  model: string;
}

export function ideSnippet(client: IdeClient, t: IdeTarget): string {
  switch (client) {
    case 'continue':
      return [
        '# ~/.continue/config.yaml (Continue 1.x); the model is served by vLLM behind runpod-llm',
        'name: runpod-llm',
        'version: 1.0.0',
        'schema: v1',
        'models:',
        `  - name: ${t.model} (runpod-llm)`,
        '    provider: openai',
        `    model: ${t.model}`,
        `    apiBase: ${t.baseUrl}`,
        `    apiKey: ${t.apiKey}`,
        '    roles:',
        '      - chat',
        '      - edit',
        '      - apply',
        // Tab autocomplete (fill-in-the-middle): Continue's vLLM provider sends its FIM prompt to
        // /v1/completions; the gateway's per-key limit (1,200/min) leaves room for typing bursts.
        `  - name: ${t.model} autocomplete (runpod-llm)`,
        '    provider: vllm',
        `    model: ${t.model}`,
        `    apiBase: ${t.baseUrl}`,
        `    apiKey: ${t.apiKey}`,
        '    roles:',
        '      - autocomplete',
      ].join('\n');
    case 'codegpt':
      return [
        'CodeGPT (VS Code): open CodeGPT → settings (gear) → Provider: "Custom" (OpenAI compatible), then:',
        `  API URL / Base URL: ${t.baseUrl}`,
        `  API key:            ${t.apiKey}`,
        `  Model:              ${t.model}`,
      ].join('\n');
    case 'kilo':
      return [
        'Kilo Code (VS Code): Settings (gear) → API Provider: "OpenAI Compatible", then:',
        `  Base URL: ${t.baseUrl}`,
        `  API Key:  ${t.apiKey}`,
        `  Model:    ${t.model}`,
      ].join('\n');
    case 'openai-env':
      return [
        '# the official OpenAI SDKs (Python, Node) and most tools read these',
        `export OPENAI_BASE_URL=${shellQuote(t.baseUrl)}`,
        `export OPENAI_API_KEY=${shellQuote(t.apiKey)}`,
        `export OPENAI_MODEL=${shellQuote(t.model)}  # pass as model= in your calls`,
      ].join('\n');
  }
}

function shellQuote(value: string): string {
  return /^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}
