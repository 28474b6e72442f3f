import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../shared/errors.js';
import { canonicalId } from './license-table.js';
import { type ProjectManifest, readManifest } from './project.js';
import { npmErrorLine, type RunCommand, runCommand } from './run-command.js';
import { licenseIds, parseSpdx } from './spdx.js';

/*
 * `runpod-llm security sbom`: a CycloneDX (1.5) SBOM of the project's installed dependency tree,
 * made by `npm sbom` (offline, reads node_modules) and corrected where npm gets it wrong:
 *
 * - npm's `--omit dev` drops production packages that the root *also* lists as devDependencies
 *   (here: ajv, needed by fastify). So we ask npm for the whole tree and keep what is reachable
 *   from the production dependencies through the SBOM's own dependency graph.
 * - npm names the root component after the directory; we take name, version, licence and
 *   supplier (`author`) from package.json and mark it an application.
 *
 * An empty or incomplete tree is an error (exit 9), never an empty SBOM.
 */

/** What the SBOM covers. */
export interface SbomOptions {
  cwd: string;
  /** Include devDependencies (marked `scope: "excluded"`, as CycloneDX has it for non-runtime use). */
  dev?: boolean;
  run?: RunCommand;
  /** Environment for npm (npm_config_* settings); default this process's. */
  env?: NodeJS.ProcessEnv;
  /** The running tool's version, recorded in metadata.tools. */
  toolVersion?: string;
}

export interface SbomResult {
  bom: CycloneDxBom;
  /** Components in the SBOM (the application itself not counted). */
  components: number;
  /** Of those, devDependencies (only with `dev`). */
  devComponents: number;
  warnings: string[];
}

export interface CycloneDxComponent {
  'bom-ref': string;
  type: string;
  name: string;
  version?: string;
  scope?: string;
  purl?: string;
  licenses?: Array<{ license: { id?: string; name?: string } } | { expression: string }>;
  properties?: Array<{ name: string; value: string }>;
  supplier?: { name: string; url?: string[]; contact?: Array<{ name?: string; email?: string }> };
  [key: string]: unknown;
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: string;
  serialNumber?: string;
  version: number;
  metadata: {
    timestamp?: string;
    tools?: unknown;
    component: CycloneDxComponent;
    supplier?: CycloneDxComponent['supplier'];
    [key: string]: unknown;
  };
  components: CycloneDxComponent[];
  dependencies?: Array<{ ref: string; dependsOn?: string[] }>;
  [key: string]: unknown;
}

const DEV_PROPERTY = 'cdx:npm:package:development';

/**
 * @example
 *   const { bom, components } = await generateSbom({ cwd: process.cwd() });
 *   writeFileAtomic('sbom.cdx.json', JSON.stringify(bom, null, 2));
 */
export async function generateSbom(options: SbomOptions): Promise<SbomResult> {
  const manifest = readManifest(options.cwd);
  const run = options.run ?? runCommand;
  const args = ['sbom', '--sbom-format', 'cyclonedx', '--sbom-type', 'application'];
  // An installed copy of a package (this tool after `npm install -g`) has no devDependencies on
  // disk, and npm sbom then refuses the tree ("missing: typescript…"). Such a copy carries its
  // npm-shrinkwrap.json, from which npm installed exactly these versions: describe that.
  const lockOnly = options.dev !== true && installedWithoutDev(options.cwd, manifest);
  if (lockOnly) args.push('--package-lock-only');
  const result = await run('npm', args, {
    cwd: options.cwd,
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  if (result.code !== 0) {
    const reason = npmErrorLine(result.stderr) ?? `npm sbom exited with ${result.code ?? 'a signal'}`;
    throw new AppError('CHECK_UNAVAILABLE_SBOM', `cannot describe the dependency tree: ${reason}`, {
      hint: 'install the dependencies first (`npm ci`)',
    });
  }
  const bom = parseBom(result.stdout);
  const warnings: string[] = [];
  const rootRef = bom.metadata.component['bom-ref'];
  const production = reachable(bom, rootRef, productionRoots(manifest));
  const isDev = (c: CycloneDxComponent): boolean => !production.has(c['bom-ref']);

  let components = bom.components;
  if (options.dev === true) {
    components = components.map((c) => markScope(c, isDev(c)));
  } else {
    components = components.filter((c) => !isDev(c)).map((c) => markScope(c, false));
    bom.dependencies = (bom.dependencies ?? [])
      .filter((d) => d.ref === rootRef || production.has(d.ref))
      .map((d) => ({ ...d, dependsOn: (d.dependsOn ?? []).filter((ref) => production.has(ref)) }));
  }
  if (components.length === 0) {
    throw new AppError(
      'CHECK_UNAVAILABLE_SBOM_EMPTY',
      `the ${options.dev === true ? '' : 'production '}dependency tree of ${manifest.name || options.cwd} is empty`,
      {
        hint: 'install the dependencies (`npm ci`); an SBOM that lists nothing proves nothing',
      },
    );
  }
  bom.components = components;
  bom.metadata.component = applicationComponent(bom.metadata.component, manifest);
  if (manifest.supplier === undefined)
    warnings.push('package.json has no "author": the SBOM names no supplier');
  else bom.metadata.supplier = bom.metadata.component.supplier;
  bom.metadata.tools = appendTool(bom.metadata.tools, options.toolVersion);
  return {
    bom,
    components: components.length,
    devComponents: components.filter((c) => c.scope === 'excluded').length,
    warnings,
  };
}

/** True when a devDependency is not installed (production-only install) and an npm-shrinkwrap.json is there. */
function installedWithoutDev(dir: string, manifest: ProjectManifest): boolean {
  const dev = Object.keys(manifest.devDependencies);
  if (dev.length === 0 || !existsSync(join(dir, 'npm-shrinkwrap.json'))) return false;
  return dev.some((name) => !existsSync(join(dir, 'node_modules', name, 'package.json')));
}

function parseBom(stdout: string): CycloneDxBom {
  let bom: CycloneDxBom;
  try {
    bom = JSON.parse(stdout) as CycloneDxBom;
  } catch {
    throw new AppError('CHECK_UNAVAILABLE_SBOM', 'npm sbom did not print JSON', {
      hint: 'update npm (10.9 or newer has `npm sbom`)',
    });
  }
  const [major = 0, minor = 0] = String(bom.specVersion ?? '')
    .split('.')
    .map(Number);
  if (
    bom.bomFormat !== 'CycloneDX' ||
    major < 1 ||
    (major === 1 && minor < 5) ||
    !Array.isArray(bom.components) ||
    typeof bom.metadata?.component?.['bom-ref'] !== 'string'
  ) {
    throw new AppError(
      'CHECK_UNAVAILABLE_SBOM',
      `npm sbom printed something other than a CycloneDX 1.5+ document (specVersion ${String(bom.specVersion)})`,
      { hint: 'update npm (10.9 or newer)' },
    );
  }
  return bom;
}

/** The root's production edges: dependencies, optionalDependencies and peerDependencies. */
function productionRoots(manifest: ProjectManifest): Set<string> {
  return new Set([
    ...Object.keys(manifest.dependencies),
    ...Object.keys(manifest.optionalDependencies),
    ...Object.keys(manifest.peerDependencies),
  ]);
}

/** bom-refs reachable from the root through production edges (npm's refs are `name@version`). */
function reachable(bom: CycloneDxBom, rootRef: string, roots: Set<string>): Set<string> {
  const edges = new Map((bom.dependencies ?? []).map((d) => [d.ref, d.dependsOn ?? []]));
  const queue = (edges.get(rootRef) ?? []).filter((ref) => roots.has(nameOfRef(ref)));
  const seen = new Set<string>();
  for (let ref = queue.pop(); ref !== undefined; ref = queue.pop()) {
    if (seen.has(ref)) continue;
    seen.add(ref);
    queue.push(...(edges.get(ref) ?? []));
  }
  return seen;
}

function nameOfRef(ref: string): string {
  const at = ref.lastIndexOf('@');
  return at > 0 ? ref.slice(0, at) : ref;
}

function markScope(component: CycloneDxComponent, dev: boolean): CycloneDxComponent {
  const properties = (component.properties ?? []).filter((p) => p.name !== DEV_PROPERTY);
  if (dev) properties.push({ name: DEV_PROPERTY, value: 'true' });
  return { ...component, scope: dev ? 'excluded' : 'required', properties };
}

function applicationComponent(npmRoot: CycloneDxComponent, manifest: ProjectManifest): CycloneDxComponent {
  const component: CycloneDxComponent = {
    ...npmRoot,
    type: 'application',
    name: manifest.name || npmRoot.name,
    version: manifest.version || npmRoot.version || '0.0.0',
  };
  if (manifest.description !== undefined) component.description = manifest.description;
  if (manifest.license !== undefined) component.licenses = licenseChoice(manifest.license);
  if (manifest.supplier !== undefined) {
    const s = manifest.supplier;
    component.supplier = {
      name: s.name,
      ...(s.url === undefined ? {} : { url: [s.url] }),
      ...(s.email === undefined ? {} : { contact: [{ name: s.name, email: s.email }] }),
    };
  }
  return component;
}

/** CycloneDX wants an SPDX id, an SPDX expression, or else a free-text name. */
function licenseChoice(license: string): NonNullable<CycloneDxComponent['licenses']> {
  const id = canonicalId(license);
  if (id !== undefined && !license.endsWith('+')) return [{ license: { id } }];
  try {
    // An expression only when every id in it is an SPDX id: `UNLICENSED` parses but is not one.
    if (
      licenseIds(parseSpdx(license)).every((x) => canonicalId(x) !== undefined || x.startsWith('LicenseRef-'))
    )
      return [{ expression: license }];
  } catch {
    // Not an expression: recorded as free text below.
  }
  return [{ license: { name: license } }];
}

/** npm writes the 1.4-style tools array; 1.5 also has `{ components: [...] }`. Ours goes in either. */
function appendTool(tools: unknown, version: string | undefined): unknown {
  const ours = {
    vendor: 'runpod-llm-manager',
    name: 'runpod-llm security sbom',
    version: version ?? 'unknown',
  };
  if (Array.isArray(tools)) return [...(tools as unknown[]), ours];
  if (
    typeof tools === 'object' &&
    tools !== null &&
    Array.isArray((tools as { components?: unknown }).components)
  ) {
    const t = tools as { components: unknown[] };
    return {
      ...t,
      components: [
        ...t.components,
        { type: 'application', group: ours.vendor, name: ours.name, version: ours.version },
      ],
    };
  }
  return [ours];
}
