import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as C from '../../src/cli/command-options.js';
import { FLAG_NAMES } from '../../src/config/names.js';
import { cli } from './cli-rig.js';

const ALL = [
  C.gatewayCommand,
  C.upCommand,
  C.downCommand,
  C.purgeCommand,
  C.statusCommand,
  C.watchCommand,
  C.doctorCommand,
  C.catalogCommand,
  C.ideConfigCommand,
  C.emulatorCommand,
  C.demoCommand,
];

describe('command options', () => {
  it('parses flags into the types the commands read (numbers, choices, --no-x)', () => {
    const up = C.upCommand()
      .exitOverride()
      .parse(
        [
          '--replicas',
          '2',
          '--budget',
          '5.00',
          '--cloud',
          'SECURE',
          '--gpu',
          'A',
          '--gpu',
          'B',
          '--no-gateway',
        ],
        { from: 'user' },
      );
    const flags: C.UpFlags = up.opts();
    assert.deepEqual(flags, {
      replicas: 2,
      budget: 5,
      cloud: 'SECURE',
      gpu: ['A', 'B'],
      gateway: false,
      watchdog: true,
    });
    const emulator = C.emulatorCommand()
      .exitOverride()
      .parse(['--port', '0', '--args-mode', 'plain'], { from: 'user' })
      .opts();
    assert.deepEqual(emulator, { port: 0, argsMode: 'plain' });
  });

  it('refuses values the declaration does not allow, before any command runs', () => {
    const quiet = { writeErr: () => undefined, writeOut: () => undefined };
    assert.throws(
      () => C.upCommand().exitOverride().configureOutput(quiet).parse(['--cloud', 'MOON'], { from: 'user' }),
      /argument 'MOON' is invalid/,
    );
    assert.throws(
      () =>
        C.gatewayCommand().exitOverride().configureOutput(quiet).parse(['--port', '70000'], { from: 'user' }),
      /port number/,
    );
  });

  it("mounted in the CLI, a bad flag is exit 2 with the usage hint on the CLI's stderr", async () => {
    for (const argv of [
      ['up', '--cloud', 'MOON'],
      ['gateway', '--nope'],
      ['emulator', '--on-exit', 'later'],
      ['security', 'scan', '--level', 'dire'],
      ['service', 'install', '--kind', 'upstart'],
    ]) {
      const run = await cli(argv, {});
      assert.equal(run.code, 2, argv.join(' '));
      assert.match(run.stderr, /^error: .*\n\(run `runpod-llm --help` for usage\)\n$/, argv.join(' '));
    }
  });

  it('names in config errors only flags that exist (FLAG_NAMES)', () => {
    const declared = new Set(ALL.flatMap((make) => make().options.map((o) => o.long)));
    for (const [path, flag] of Object.entries(FLAG_NAMES))
      assert.ok(declared.has(flag), `${path}: ${flag} is not a declared flag`);
  });
});
