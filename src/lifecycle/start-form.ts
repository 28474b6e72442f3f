import { AppError } from '../shared/errors.js';
import type { Verdict } from '../state/verdicts.js';
import type { RunSettings } from './run-settings.js';

/**
 * Which start recipe a new run uses, from what `runpod-llm doctor --live` found
 * out about RunPod's v2 API (the `json_start_command` verdict in the state):
 * - honoured, or unknown (never probed): the guarded JSON start command; if v2 does not honour
 *   it after all, `up` fails fast on the pod's log and says what to do (fast-failure.ts);
 * - not honoured: the same guarded script as a shell command, which needs an image without an
 *   entrypoint (docker/vllm-noentry, passed with `--image`); with the stock image that cannot
 *   work, so `up` stops before creating anything and names the options.
 * Unguarded runs (`--unguarded`) are plain `vllm serve` arguments and need neither: an explicit
 * choice, never a silent fallback.
 */

/** The stock vLLM image, whose entrypoint is `vllm serve` (any tag or digest). */
const STOCK_VLLM_IMAGE = /^(?:docker\.io\/)?vllm\/vllm-openai(?::|@|$)/;

export function isStockVllmImage(image: string): boolean {
  return STOCK_VLLM_IMAGE.test(image);
}

export function chooseStartForm(settings: RunSettings, verdict: Verdict | null): RunSettings {
  if (!settings.guarded) return settings;
  if (verdict?.value !== 'not_honoured') return { ...settings, startForm: 'json' };
  if (!isStockVllmImage(settings.image)) return { ...settings, startForm: 'shell' };
  const when = new Date(verdict.checkedAt).toISOString().slice(0, 10);
  throw new AppError(
    'CONFIG_START_COMMAND',
    `RunPod's API does not honour the JSON start command (runpod-llm doctor --live, ${when}), so the guard cannot start in the stock image ${settings.image}; nothing was created`,
    {
      hint:
        'build the image without an entrypoint (docker build -t <you>/vllm-noentry:v0.11.0 docker/vllm-noentry, push it) and run `runpod-llm up --image <you>/vllm-noentry:v0.11.0`; ' +
        "or `runpod-llm up --unguarded` (vLLM's open routes become public); or run `runpod-llm doctor --live` again if RunPod changed",
    },
  );
}
