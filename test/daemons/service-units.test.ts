import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  envFileContent,
  serviceEnv,
  serviceFiles,
  type ServiceSpec,
} from '../../src/daemons/service-units.js';

const spec: ServiceSpec = {
  kind: 'systemd',
  home: '/home/u/.runpod-llm',
  workingDirectory: '/home/u/My Projects/100% llm',
  self: { command: '/opt/node 20/bin/node', args: ['/opt/rlm/dist/cli/main.js'] },
  userHome: '/home/u',
};

describe('service unit files', () => {
  it('quotes what systemd would split or expand (spaces, %, $) and puts units where systemd --user looks', () => {
    const [watchdog] = serviceFiles({
      ...spec,
      self: { command: '/opt/node 20/bin/node', args: ['/opt/$x/main.js'] },
    });
    assert.equal(watchdog?.path, '/home/u/.config/systemd/user/runpod-llm-watchdog.service');
    assert.match(watchdog?.content ?? '', /^WorkingDirectory="\/home\/u\/My Projects\/100%% llm"$/m);
    assert.match(
      watchdog?.content ?? '',
      /^ExecStart="\/opt\/node 20\/bin\/node" "\/opt\/\$\$x\/main\.js" watch --loop --service$/m,
    );
    assert.equal(
      serviceFiles({ ...spec, xdgConfigHome: '/cfg' })[1]?.path,
      '/cfg/systemd/user/runpod-llm-gateway.service',
    );
  });

  it('refuses a home systemd cannot take unquoted, with the fix', () => {
    assert.throws(
      () => serviceFiles({ ...spec, home: '/home/u/my home' }),
      (err: Error & { hint?: string }) =>
        /space or quote/.test(err.message) && /RUNPOD_LLM_HOME/.test(err.hint ?? ''),
    );
  });

  it('environment files: the watchdog gets the RunPod key and HF token, the gateway never; values that would read differently are refused', () => {
    const env = {
      RUNPOD_API_KEY: 'k1',
      HF_TOKEN: 'h1',
      GATEWAY_API_KEYS: 'g1',
      UPSTREAM_URL: 'http://x/v1',
      PORT: '8000',
      UNRELATED: 'z',
      LOG_LEVEL: '',
    };
    assert.deepEqual(serviceEnv(env, 'watchdog'), [
      ['HF_TOKEN', 'h1'],
      ['PORT', '8000'],
      ['RUNPOD_API_KEY', 'k1'],
      ['UPSTREAM_URL', 'http://x/v1'],
    ]);
    assert.deepEqual(serviceEnv(env, 'gateway'), [
      ['GATEWAY_API_KEYS', 'g1'],
      ['PORT', '8000'],
    ]);
    assert.equal(
      envFileContent([
        ['A', 'plain'],
        ['B', 'has space'],
      ])
        .split('\n')
        .slice(1)
        .join('\n'),
      'A=plain\nB="has space"\n',
    );
    for (const bad of ['a"b', "a'b", 'a\\b', 'a$b', 'a\nb', ' lead'])
      assert.throws(() => envFileContent([['X', bad]]), /cannot carry/);
  });
});
