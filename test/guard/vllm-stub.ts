/**
 * The `vllm` program of the recipe test: run as `vllm serve <model> --host H --port P ...` by the
 * pod's start command, it records its argv and whether the key came through the environment
 * (to $STUB_RECORD), then serves the emulator's vLLM stand-in there, configured by the emulator's
 * own reading of those arguments (so the test also proves the emulator understands the recipe).
 */
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseVllmLaunch } from '../../src/emulator/pod-args.js';
import { createVllmStandinHandler } from '../../src/emulator/vllm-standin.js';
import { shellQuote } from '../../src/guard/recipe.js';

const [command, ...args] = process.argv.slice(2);
if (command !== 'serve') {
  process.stderr.write('stub vllm: only "vllm serve" is supported\n');
  process.exit(64);
}
const env = { VLLM_API_KEY: process.env.VLLM_API_KEY ?? '' };
const launch = parseVllmLaunch(args.map(shellQuote).join(' '), env);
const host = args[args.indexOf('--host') + 1] ?? '0.0.0.0';
writeFileSync(
  process.env.STUB_RECORD ?? 'stub-record.json',
  JSON.stringify({ pid: process.pid, argv: process.argv.slice(2), keyFromEnv: env.VLLM_API_KEY, launch }),
);
const standin = createVllmStandinHandler({
  model: launch.servedModelName,
  ...(launch.apiKey === undefined ? {} : { apiKey: launch.apiKey }),
});
createServer((req, res) => standin.handler(req, res, req.url ?? '/')).listen(launch.port, host);
