import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  README_END,
  README_START,
  comparableDemoText,
  normaliseDemoOutput,
  withDemoOutput,
} from '../../scripts/readme-demo.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// Two runs' worth of what varies: every port, id, key, pid, path, time and timing differs.
const run = (v: {
  api: number;
  proxy: number;
  gw: number;
  pod: string;
  pod2: string;
  name: string;
  key: string;
  pid: number;
  tmp: string;
  ms: number;
  uuid: string;
  at: string;
}): string =>
  [
    `   RUNPOD_API_URL=http://127.0.0.1:${v.api}`,
    `   RUNPOD_POD_URL_TEMPLATE=http://127.0.0.1:${v.proxy}/proxy/{podId}-{port}`,
    `   RUNPOD_LLM_HOME=${v.tmp}/runpod-llm-demo-${v.name.slice(0, 6)}   (state)`,
    `pod ${v.pod} (runpod-llm-${v.name}) created on 1× NVIDIA RTX A5000, $0.27/h`,
    `  [${v.ms}ms] PROVISIONING — waiting for the pod to be RUNNING`,
    `ready after ${v.ms % 9}s: http://127.0.0.1:${v.proxy}/proxy/${v.pod}-8000 serves m`,
    `watchdog: started (pid ${v.pid}, a pass every 30s; log ${v.tmp}/runpod-llm-demo-${v.name.slice(0, 6)}/logs/watchdog.log)`,
    `Endpoint:    http://127.0.0.1:${v.gw}/v1`,
    `Gateway key: ${v.key}  (stored 0600)`,
    'IDE (Continue, ~/.continue/config.yaml):',
    `  apiKey: ${v.key}`,
    '',
    `   first token after ${v.ms} ms, 9 prompt + 12 completion tokens`,
    `run       ${v.uuid} since ${v.at}, model m`,
    `limits    runtime 30m (${29 - (v.ms % 2)}m left), idle 10m → terminate`,
    `pod       ${v.pod} (runpod-llm-${v.name}) RUNNING, up ${v.ms % 7}s, guard v3`,
    `idle      ${v.ms % 3}s (last request ${v.at}; 2 requests)`,
    `cost      this run $0.000${v.ms % 9}, today $0.000${v.ms % 9}, this month $0.000${v.ms % 9}`,
    `recreate ${v.pod} (restarted): recreated ${v.pod} as ${v.pod2} (restarted)`,
    `${v.pod2} (runpod-llm-${v.name.split('').reverse().join('')}): terminated`,
    `Done in ${v.ms / 10} s. With a RunPod account: …`,
    '',
  ].join('\n');

describe('readme:demo', () => {
  it('gives the same text for two runs that differ only in what varies run to run', () => {
    const a = normaliseDemoOutput(
      run({
        api: 35113,
        proxy: 45537,
        gw: 41363,
        pod: '27njp20q4jmc93',
        pod2: 'i6iu20zfuriyd3',
        name: 'hq58rcnk',
        key: 'rlm_SAvhrZdNZofQPvlawh5yaOU7IIZcc_kY',
        pid: 10348,
        tmp: '/tmp',
        ms: 7,
        uuid: 'c7f4e0f7-1717-476c-ab98-4cb13410d4bd',
        at: '2026-11-26T00:12:18.140Z',
      }),
    );
    const b = normaliseDemoOutput(
      run({
        api: 36385,
        proxy: 42593,
        gw: 35521,
        pod: 'm0fzh7px44i26x',
        pod2: 'mnamq76c1z5sts',
        name: 'r501hp97',
        key: 'rlm_80-0N42slUdUG9INg3fVK3Fr7qPUaWjz',
        pid: 14986,
        tmp: '/var/tmp/x',
        ms: 21,
        uuid: '5efecd48-2f83-4365-b0ad-7722a199d728',
        at: '2026-12-02T16:41:26.647Z',
      }),
    );
    // The first-token time stays as recorded (the reader should see it); the check masks it.
    assert.match(a, /first token after 7 ms/);
    assert.match(b, /first token after 21 ms/);
    assert.equal(comparableDemoText(a), comparableDemoText(b));
    assert.notEqual(a, b);
    for (const secret of ['rlm_SAvh', '27njp20q4jmc93', '35113', '10348', 'c7f4e0f7'])
      assert.ok(!a.includes(secret), secret);
    assert.match(a, /^pod <pod-1> \(runpod-llm-<name-1>\) created/m);
    assert.match(a, /recreated <pod-1> as <pod-2> \(restarted\)/);
    assert.match(a, /IDE \(Continue, ~\/\.continue\/config\.yaml\): … a ready-to-paste snippet …\n\n/);
  });

  it('keeps what the demo says: a changed line stays a changed line', () => {
    const base = 'pod       x RUNNING, up 6s, guard v3\n';
    assert.notEqual(normaliseDemoOutput(base), normaliseDemoOutput(base.replace('guard v3', 'guard v2')));
  });

  it('rewrites only the block between the markers', () => {
    const readme = `# t\nbefore\n${README_START}\n\`\`\`\nold\n\`\`\`\n${README_END}\nafter\n`;
    assert.equal(
      withDemoOutput(readme, 'new\n'),
      `# t\nbefore\n${README_START}\n\`\`\`\nnew\n\`\`\`\n${README_END}\nafter\n`,
    );
    assert.throws(() => withDemoOutput('# no markers\n', 'x'), /no <!-- demo-output:start -->/);
  });

  it('README.md holds the output of a fresh demo run (npm run readme:demo --check)', () => {
    assert.ok(readFileSync(join(root, 'README.md'), 'utf8').includes(README_START));
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/readme-demo.ts', '--check'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 110_000,
    });
    assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
  });
});
