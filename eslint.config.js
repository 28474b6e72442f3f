// @ts-check
// ESLint with type information (typescript-eslint 8 on the `typescript` package, 6.0.3: the JS API
// that TypeScript 7 no longer has; the type-check itself runs on `typescript-7`, see package.json).
// What tsc already checks stays with tsc (unused locals and parameters, exhaustive returns); what
// Prettier owns (layout) is not linted. Run: `npm run lint` (everything) or `npx eslint <files>`.
import tseslint from 'typescript-eslint';

/** node:test's `describe`, `it`, `test` and `suite` return promises that the runner itself awaits. */
const nodeTestCalls = { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] };

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-check/**',
      'bench/out/**',
      'bench/.peers/**',
      '.cache/**',
      '.scratch/**',
      '.runpod-llm/**',
      'node_modules/**',
    ],
  },
  {
    files: ['**/*.ts'],
    // recommendedTypeChecked, rule by rule below where we depart from it or add to it. It brings the
    // promise rules (no-floating-promises, no-misused-promises, await-thenable: a lost rejection is an
    // unhandled rejection, which ends a Node 20 process), no-unnecessary-type-assertion (an `as` that
    // changes nothing hides the day the type changes), no-unsafe-* (`any` from JSON.parse or an
    // untyped library flowing into typed code unchecked), unbound-method, no-base-to-string,
    // restrict-template-expressions, only-throw-error and prefer-promise-reject-errors (one error
    // hierarchy: only Error objects are thrown or rejected).
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTestCalls] }],
      // `return await` inside try/catch/finally, so the catch and finally see the rejection; nowhere else.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A switch over a union must name every member (a new RunPod status or error code must be handled
      // where it is switched on); a `default` counts as handling the rest.
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: true },
      ],
      // Type arguments equal to the default are noise for the reader, like unnecessary assertions.
      '@typescript-eslint/no-unnecessary-type-arguments': 'error',
      // tsc owns unused locals and parameters (noUnusedLocals, noUnusedParameters): one owner per concern.
      '@typescript-eslint/no-unused-vars': 'off',
      // Off: async functions without `await` implement Promise-returning interfaces (a store's
      // `close()`, a fake clock's `sleep()`); making them sync would change what they throw into a throw
      // at the call instead of a rejection. The promise rules above catch the real mistakes.
      '@typescript-eslint/require-await': 'off',
      // Not enabled (strict set): no-unnecessary-condition. It trusts declared types, and this code checks
      // data it parsed from disk, Redis and RunPod defensively (a cache entry's version, a payload's kind);
      // "fixing" its findings would remove validation. 144 findings, most in tests' optional chains.
    },
  },
  {
    // STYLE: small modules; a file is split before 400 lines of code (blank lines and comments not
    // counted). Tests and benchmarks are exempt: a suite reads best as one file.
    files: ['src/**/*.ts'],
    rules: { 'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }] },
  },
  {
    // Tests read JSON bodies (`JSON.parse` is `any`) and drive dynamically imported clients; asserting
    // on them is the test's job, so the `any` rules would only add casts.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
    },
  },
  {
    // Plain JavaScript (build script, this file, the dashboard's browser script): syntax rules only, no
    // type information (they are not in tsconfig.json).
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.recommended],
  },
);
