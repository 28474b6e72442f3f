import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import AjvModule from 'ajv';
import addFormatsModule from 'ajv-formats';
import { installedTree } from '../../src/security/installed-tree.js';
import { resolveOutputPath } from '../../src/security/output-file.js';
import { type CycloneDxBom, generateSbom, type SbomResult } from '../../src/security/sbom.js';
import { isAppError } from '../../src/shared/errors.js';
import { makeProject, REPO } from './fixture-project.js';

/**
 * The structure CycloneDX 1.5 requires of what we emit (written from the specification's JSON
 * schema: required fields, formats and enumerations of the parts we produce).
 */
const COMPONENT_TYPES = [
  'application',
  'framework',
  'library',
  'container',
  'platform',
  'operating-system',
  'device',
  'device-driver',
  'firmware',
  'file',
  'machine-learning-model',
  'data',
];
const licenseChoice = {
  type: 'array',
  items: {
    oneOf: [
      {
        type: 'object',
        required: ['license'],
        properties: {
          license: {
            type: 'object',
            oneOf: [{ required: ['id'] }, { required: ['name'] }],
            properties: { id: { type: 'string', minLength: 1 }, name: { type: 'string', minLength: 1 } },
          },
        },
      },
      {
        type: 'object',
        required: ['expression'],
        properties: { expression: { type: 'string', minLength: 1 } },
      },
    ],
  },
};
const component = {
  type: 'object',
  required: ['type', 'name', 'bom-ref'],
  properties: {
    type: { enum: COMPONENT_TYPES },
    name: { type: 'string', minLength: 1 },
    version: { type: 'string' },
    'bom-ref': { type: 'string', minLength: 1 },
    scope: { enum: ['required', 'optional', 'excluded'] },
    purl: { type: 'string', pattern: '^pkg:npm/' },
    licenses: licenseChoice,
    properties: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name'],
        properties: { name: { type: 'string' }, value: { type: 'string' } },
      },
    },
    hashes: {
      type: 'array',
      items: {
        type: 'object',
        required: ['alg', 'content'],
        properties: {
          alg: {
            enum: [
              'MD5',
              'SHA-1',
              'SHA-256',
              'SHA-384',
              'SHA-512',
              'SHA3-256',
              'SHA3-384',
              'SHA3-512',
              'BLAKE2b-256',
              'BLAKE2b-384',
              'BLAKE2b-512',
              'BLAKE3',
            ],
          },
          content: { type: 'string', pattern: '^[A-Fa-f0-9]+$' },
        },
      },
    },
    supplier: {
      type: 'object',
      properties: {
        name: { type: 'string' },
        url: { type: 'array', items: { type: 'string' } },
        contact: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, email: { type: 'string', format: 'email' } },
          },
        },
      },
    },
  },
};
const CYCLONEDX_1_5 = {
  type: 'object',
  required: ['bomFormat', 'specVersion', 'version', 'metadata', 'components'],
  properties: {
    bomFormat: { const: 'CycloneDX' },
    specVersion: { type: 'string', pattern: '^1\\.([5-9]|\\d\\d)$' },
    serialNumber: {
      type: 'string',
      pattern: '^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$',
    },
    version: { type: 'integer', minimum: 1 },
    metadata: {
      type: 'object',
      required: ['timestamp', 'component'],
      properties: {
        timestamp: { type: 'string', format: 'date-time' },
        component,
        supplier: component.properties.supplier,
      },
    },
    components: { type: 'array', minItems: 1, items: component },
    dependencies: {
      type: 'array',
      items: {
        type: 'object',
        required: ['ref'],
        properties: {
          ref: { type: 'string' },
          dependsOn: { type: 'array', uniqueItems: true, items: { type: 'string' } },
        },
      },
    },
  },
};

function assertValidCycloneDx(bom: CycloneDxBom): void {
  // CommonJS modules: under NodeNext the default import is the module object (see test/helpers/openapi.ts).
  const ajv = new AjvModule.default({ allErrors: true, strict: false });
  addFormatsModule.default(ajv);
  const validate = ajv.compile(CYCLONEDX_1_5);
  assert.ok(validate(bom), JSON.stringify(validate.errors?.slice(0, 5)));
  const refs = bom.components.map((c) => c['bom-ref']);
  assert.equal(new Set(refs).size, refs.length, 'bom-refs are unique');
  const known = new Set([...refs, bom.metadata.component['bom-ref']]);
  for (const dep of bom.dependencies ?? []) {
    assert.ok(known.has(dep.ref), `dependency entry for an unknown ref ${dep.ref}`);
    for (const ref of dep.dependsOn ?? [])
      assert.ok(known.has(ref), `${dep.ref} depends on an unknown ref ${ref}`);
  }
}

/** SECURITY.md "SBOM". */
describe('security sbom', () => {
  describe('of this project', () => {
    let prod: SbomResult;
    let dev: SbomResult;
    before(async () => {
      [prod, dev] = await Promise.all([
        generateSbom({ cwd: REPO, toolVersion: 'test' }),
        generateSbom({ cwd: REPO, dev: true, toolVersion: 'test' }),
      ]);
    });

    it('is a structurally valid CycloneDX 1.5 document', () => {
      assertValidCycloneDx(prod.bom);
      assertValidCycloneDx(dev.bom);
      assert.equal(prod.bom.specVersion, '1.5');
    });

    it('describes the application from package.json (not the directory name npm uses)', () => {
      const app = prod.bom.metadata.component;
      assert.equal(app.type, 'application');
      assert.equal(app.name, 'runpod-llm-manager');
      assert.equal(
        app.version,
        (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version,
      );
      assert.deepEqual(app.licenses, [{ license: { id: 'MIT' } }]);
    });

    it('lists exactly the installed production tree, including packages the root also lists as devDependencies', () => {
      const names = new Set(prod.bom.components.map((c) => `${c.name}@${c.version ?? ''}`));
      const tree = new Set(installedTree(REPO).map((p) => `${p.name}@${p.version}`));
      assert.deepEqual([...names].sort(), [...tree].sort());
      // npm's own --omit dev drops ajv (fastify needs it; the root also has it as a devDependency).
      assert.ok(names.has(`ajv@${installedTree(REPO).find((p) => p.name === 'ajv')?.version ?? ''}`));
      assert.ok(![...names].some((n) => n.startsWith('typescript@') || n.startsWith('tsx@')));
      assert.ok(prod.bom.components.every((c) => c.scope === 'required'));
    });

    it('with --dev adds the devDependencies, marked scope "excluded"', () => {
      const ts = dev.bom.components.find((c) => c.name === 'typescript');
      assert.equal(ts?.scope, 'excluded');
      assert.ok(ts?.properties?.some((p) => p.name === 'cdx:npm:package:development' && p.value === 'true'));
      assert.equal(dev.components, prod.components + dev.devComponents);
      assert.ok(dev.bom.components.find((c) => c.name === 'ajv')?.scope === 'required');
    });

    it('records the tool that made it', () => {
      assert.ok(JSON.stringify(prod.bom.metadata.tools).includes('runpod-llm security sbom'));
    });
  });

  describe('of other projects', () => {
    const projects: Array<{ remove: () => void }> = [];
    after(() => {
      for (const p of projects) p.remove();
    });

    it('takes name, version, licence expression and supplier from package.json', async () => {
      const p = makeProject(
        {
          name: 'fixture-app',
          version: '2.3.4',
          license: '(MIT OR Apache-2.0)',
          author: 'Jane Doe <jane@example.com> (https://example.com)',
          dependencies: { a: '*' },
          devDependencies: { d: '*' },
        },
        {
          a: { name: 'a', version: '1.0.0', license: 'MIT' },
          d: { name: 'd', version: '3.0.0', license: 'GPL-3.0' },
        },
      );
      projects.push(p);
      const { bom, warnings } = await generateSbom({ cwd: p.dir });
      assertValidCycloneDx(bom);
      assert.deepEqual(warnings, []);
      assert.equal(bom.metadata.component.name, 'fixture-app');
      assert.equal(bom.metadata.component.version, '2.3.4');
      assert.deepEqual(bom.metadata.component.licenses, [{ expression: '(MIT OR Apache-2.0)' }]);
      assert.deepEqual(bom.metadata.component.supplier, {
        name: 'Jane Doe',
        url: ['https://example.com'],
        contact: [{ name: 'Jane Doe', email: 'jane@example.com' }],
      });
      assert.deepEqual(bom.metadata.supplier, bom.metadata.component.supplier);
      assert.deepEqual(
        bom.components.map((c) => c.name),
        ['a'],
      );
    });

    it('warns when package.json names no author (no supplier to record)', async () => {
      const p = makeProject(
        { name: 'anon', version: '1.0.0', license: 'UNLICENSED', dependencies: { a: '*' } },
        { a: { name: 'a', version: '1.0.0' } },
      );
      projects.push(p);
      const { bom, warnings } = await generateSbom({ cwd: p.dir });
      assert.match(warnings.join(), /no "author"/);
      assert.equal(bom.metadata.supplier, undefined);
      assert.deepEqual(bom.metadata.component.licenses, [{ license: { name: 'UNLICENSED' } }]);
    });

    it('an empty production tree is an error (exit 9), not an empty SBOM', async () => {
      const p = makeProject(
        { name: 'empty', version: '1.0.0', devDependencies: { d: '*' } },
        { d: { name: 'd', version: '1.0.0' } },
      );
      projects.push(p);
      await assert.rejects(
        generateSbom({ cwd: p.dir }),
        (err: unknown) => isAppError(err) && err.code === 'CHECK_UNAVAILABLE_SBOM_EMPTY',
      );
    });

    it('a tree with a dependency that is not installed is an error naming it', async () => {
      const p = makeProject({ name: 'missing', version: '1.0.0', dependencies: { 'left-pad': '^1.3.0' } });
      projects.push(p);
      await assert.rejects(
        generateSbom({ cwd: p.dir }),
        (err: unknown) =>
          isAppError(err) && err.code === 'CHECK_UNAVAILABLE_SBOM' && /left-pad/.test(err.message),
      );
    });

    it('an installed copy (no devDependencies on disk) is described from its npm-shrinkwrap.json', async () => {
      const root = {
        name: 'installed',
        version: '1.0.0',
        author: 'A',
        dependencies: { a: '^1.0.0' },
        devDependencies: { d: '^1.0.0' },
      };
      const p = makeProject(root, { a: { name: 'a', version: '1.0.0', license: 'MIT' } });
      projects.push(p);
      // npm refuses the actual tree: a devDependency is missing.
      await assert.rejects(
        generateSbom({ cwd: p.dir }),
        (err: unknown) =>
          isAppError(err) && err.code === 'CHECK_UNAVAILABLE_SBOM' && /missing: d@/.test(err.message),
      );
      const lock = {
        name: 'installed',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': {
            name: 'installed',
            version: '1.0.0',
            dependencies: root.dependencies,
            devDependencies: root.devDependencies,
          },
          'node_modules/a': { version: '1.0.0', license: 'MIT' },
          'node_modules/d': { version: '1.0.0', dev: true, license: 'MIT' },
        },
      };
      writeFileSync(join(p.dir, 'npm-shrinkwrap.json'), JSON.stringify(lock));
      const { bom, components } = await generateSbom({ cwd: p.dir });
      assert.equal(components, 1);
      assert.deepEqual(
        bom.components.map((c) => `${c.name}@${c.version ?? ''}`),
        ['a@1.0.0'],
      );
      assert.equal(bom.metadata.component.name, 'installed');
    });

    it('no package.json is an error (exit 9)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sbom-none-'));
      try {
        await assert.rejects(
          generateSbom({ cwd: dir }),
          (err: unknown) => isAppError(err) && err.code === 'CHECK_UNAVAILABLE_NO_PROJECT',
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  describe('output path', () => {
    let cwd: string;
    let outside: string;
    before(() => {
      cwd = mkdtempSync(join(tmpdir(), 'sbom-cwd-'));
      outside = mkdtempSync(join(tmpdir(), 'sbom-outside-'));
      mkdirSync(join(cwd, 'reports'));
      symlinkSync(outside, join(cwd, 'escape'));
      writeFileSync(join(outside, 'victim.json'), 'keep me');
      symlinkSync(join(outside, 'victim.json'), join(cwd, 'linked.json'));
    });
    after(() => {
      rmSync(cwd, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    });
    const refused = (out: string, why: RegExp): void =>
      assert.throws(
        () => resolveOutputPath(out, cwd, false),
        (err: unknown) =>
          isAppError(err) && err.code === 'CLI_USAGE_OUTPUT_OUTSIDE_CWD' && why.test(err.message),
        out,
      );

    it('accepts files in the working directory and its subdirectories', () => {
      assert.equal(resolveOutputPath('sbom.cdx.json', cwd, false), join(cwd, 'sbom.cdx.json'));
      assert.equal(
        resolveOutputPath('reports/sbom.cdx.json', cwd, false),
        join(cwd, 'reports', 'sbom.cdx.json'),
      );
    });
    it('refuses paths outside it, through a symlinked directory, onto a symlink, or into a missing directory', () => {
      refused('../sbom.cdx.json', /outside the current directory/);
      refused(join(outside, 'sbom.cdx.json'), /outside the current directory/);
      refused('escape/sbom.cdx.json', /symlink/);
      refused('linked.json', /symbolic link/);
      refused('nowhere/sbom.cdx.json', /does not exist/);
    });
    it('--force writes where it is told', () => {
      assert.equal(resolveOutputPath(join(outside, 'x.json'), cwd, true), join(outside, 'x.json'));
    });
  });
});
