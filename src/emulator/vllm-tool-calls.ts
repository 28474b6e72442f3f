import { type Body, chatPromptTokens, hex, textOf, type VllmAnswer, words } from './vllm-routes.js';

/*
 * Tool calls for the stand-in's chat completions: a "model" that, given tools and a user turn,
 * calls the tool that reads (its path-like parameters filled from the prompt) and, given a tool
 * result, says how many bytes it read, so an agent turn can be followed end to end.
 */
interface ToolSpec {
  name: string;
  parameters: { properties?: Record<string, { type?: string }>; required?: string[] } | undefined;
}

function toolsOf(body: Body): ToolSpec[] {
  if (!Array.isArray(body.tools) || body.tool_choice === 'none') return [];
  const out: ToolSpec[] = [];
  for (const t of body.tools as Array<Record<string, unknown>>) {
    const fn = (t.function ?? t) as { name?: unknown; parameters?: unknown };
    if (typeof fn.name === 'string')
      out.push({ name: fn.name, parameters: fn.parameters as ToolSpec['parameters'] });
  }
  return out;
}

/** The arguments the scripted model passes: path-like parameters get the path named in the prompt. */
function toolArguments(tool: ToolSpec, prompt: string): string {
  const path =
    /(?:^|\s)((?:\.{0,2}\/)?[\w.\-/]+\.\w{1,8})(?=\s|$|[.,;:!?'"])/.exec(prompt)?.[1] ?? 'README.md';
  const args: Record<string, unknown> = {};
  const props = tool.parameters?.properties ?? {};
  for (const name of tool.parameters?.required ?? Object.keys(props).slice(0, 1)) {
    const type = props[name]?.type;
    if (/path|file/i.test(name) || type === 'string' || type === undefined)
      args[name] = /path|file/i.test(name) ? path : prompt.slice(0, 40);
    else if (type === 'number' || type === 'integer') args[name] = 1;
    else if (type === 'boolean') args[name] = false;
    else if (type === 'array') args[name] = [];
    else args[name] = {};
  }
  return JSON.stringify(args);
}

function pickTool(tools: ToolSpec[]): ToolSpec {
  return (
    tools.find((t) => /^read/i.test(t.name)) ??
    tools.find((t) => /read/i.test(t.name)) ??
    (tools[0] as ToolSpec)
  );
}

/**
 * A chat turn with tools: a user turn calls a tool; after a tool result the model answers
 * `Read N bytes.` (N: the UTF-8 length of the last tool result). Undefined: no tools involved.
 */
export function scriptedToolTurn(body: Body, model: string): VllmAnswer | undefined {
  const messages = Array.isArray(body.messages) ? (body.messages as Array<Record<string, unknown>>) : [];
  const last = messages[messages.length - 1];
  if (last === undefined) return undefined;
  const tools = toolsOf(body);
  const id = `chatcmpl-${hex(12)}`;
  const created = Math.floor(Date.now() / 1000);
  const stream = body.stream === true;
  const promptTokens = chatPromptTokens(body);
  const usage = (completion: number) => ({
    prompt_tokens: promptTokens,
    total_tokens: promptTokens + completion,
    completion_tokens: completion,
    prompt_tokens_details: null,
  });
  const withUsage =
    typeof body.stream_options === 'object' &&
    body.stream_options !== null &&
    (body.stream_options as { include_usage?: unknown }).include_usage === true;
  if (last.role === 'tool') {
    const tokens = words(`Read ${Buffer.byteLength(textOf(last.content))} bytes.`).map((w, i) =>
      i === 0 ? w : ` ${w}`,
    );
    if (!stream) {
      return {
        status: 200,
        json: {
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: tokens.join(''),
                refusal: null,
                tool_calls: [],
                reasoning_content: null,
              },
              logprobs: null,
              finish_reason: 'stop',
              stop_reason: null,
            },
          ],
          usage: usage(tokens.length),
          prompt_logprobs: null,
        },
      };
    }
    const base = { id, object: 'chat.completion.chunk', created, model };
    const frame = (value: object) => `data: ${JSON.stringify(value)}\n\n`;
    const sse = [
      frame({
        ...base,
        choices: [
          { index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null },
        ],
      }),
      ...tokens.map((t) =>
        frame({
          ...base,
          choices: [{ index: 0, delta: { content: t }, logprobs: null, finish_reason: null }],
        }),
      ),
      frame({
        ...base,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop', stop_reason: null }],
      }),
    ];
    if (withUsage) sse.push(frame({ ...base, choices: [], usage: usage(tokens.length) }));
    sse.push('data: [DONE]\n\n');
    return { status: 200, sse };
  }
  if (tools.length === 0 || last.role !== 'user') return undefined;
  const tool = pickTool(tools);
  const args = toolArguments(tool, textOf(last.content));
  const callId = `chatcmpl-tool-${hex(8)}`;
  if (!stream) {
    return {
      status: 200,
      json: {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: null,
              refusal: null,
              tool_calls: [{ id: callId, type: 'function', function: { name: tool.name, arguments: args } }],
              reasoning_content: null,
            },
            logprobs: null,
            finish_reason: 'tool_calls',
            stop_reason: null,
          },
        ],
        usage: usage(8),
        prompt_logprobs: null,
      },
    };
  }
  const base = { id, object: 'chat.completion.chunk', created, model };
  const chunk = (delta: object, finish: string | null = null) =>
    `data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish, ...(finish === null ? {} : { stop_reason: null }) }] })}\n\n`;
  const pieces = args.length > 12 ? [args.slice(0, 10), args.slice(10)] : [args];
  const sse = [
    chunk({ role: 'assistant', content: '' }),
    chunk({
      tool_calls: [{ id: callId, type: 'function', index: 0, function: { name: tool.name, arguments: '' } }],
    }),
    ...pieces.map((p) => chunk({ tool_calls: [{ index: 0, function: { arguments: p } }] })),
    chunk({}, 'tool_calls'),
  ];
  if (withUsage) sse.push(`data: ${JSON.stringify({ ...base, choices: [], usage: usage(8) })}\n\n`);
  sse.push('data: [DONE]\n\n');
  return { status: 200, sse };
}
