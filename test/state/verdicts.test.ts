import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getVerdict, listVerdicts, setVerdict } from '../../src/state/verdicts.js';
import { tempState } from './helpers.js';

describe('verdicts (doctor --live)', () => {
  it('stores one row per question; the latest answer wins, with its date and evidence', () => {
    const { state, clock, done } = tempState();
    try {
      assert.equal(getVerdict(state, 'json_start_command'), null);
      setVerdict(state, {
        name: 'json_start_command',
        value: 'not_honoured',
        detail: 'args came back as plain text',
      });
      clock.advance(60_000);
      setVerdict(state, { name: 'json_start_command', value: 'honoured' });
      setVerdict(state, { name: 'self_stop', value: 'unknown', checkedAt: 42, detail: null });
      assert.deepEqual(getVerdict(state, 'json_start_command'), {
        name: 'json_start_command',
        value: 'honoured',
        checkedAt: clock.now(),
        detail: null,
      });
      assert.deepEqual(
        listVerdicts(state).map((v) => [v.name, v.value, v.checkedAt]),
        [
          ['json_start_command', 'honoured', clock.now()],
          ['self_stop', 'unknown', 42],
        ],
      );
    } finally {
      done();
    }
  });

  it('refuses a value or a question it does not know', () => {
    const { state, done } = tempState();
    try {
      assert.throws(
        () => setVerdict(state, { name: 'json_start_command', value: 'maybe' as never }),
        /CHECK constraint/,
      );
      assert.throws(
        () => setVerdict(state, { name: 'other' as never, value: 'honoured' }),
        /CHECK constraint/,
      );
    } finally {
      done();
    }
  });
});
