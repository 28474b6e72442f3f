import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020Module, { type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// Both are CommonJS with `module.exports.default = …`; under NodeNext the default import is the
// module object, so `.default` is the class/function at compile time and at run time alike.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

/**
 * Validates bodies against RunPod's published OpenAPI 3.1 document (openapi-v2.json), so the
 * emulator is checked against the spec rather than against our own reading of it.
 *
 * The document is vendored as test/fixtures/runpod/openapi-v2.json (see docs/runpod-contract.md),
 * and tests read only that copy: nothing outside the repository (refresh the fixture instead).
 * The whole document is registered as one schema so every `#/components/...` reference resolves
 * in place; a response schema is then a JSON pointer into `paths`.
 *
 * @example
 *   const spec = loadRunPodSpec();
 *   assert.deepEqual(spec.validateResponse('GET', '/v2/pods/{id}', 200, contentType, body), []);
 */
const here = dirname(fileURLToPath(import.meta.url));
const SPEC_FILE = resolve(here, '../fixtures/runpod/openapi-v2.json');

type Json = Record<string, unknown>;
const SPEC_ID = 'runpod-openapi-v2';

export interface RunPodSpec {
  /** Errors (empty when valid) for a response of `method path` with this status and content type. */
  validateResponse(
    method: string,
    pathTemplate: string,
    status: number,
    contentType: string | null,
    body: unknown,
  ): string[];
  /** Errors for a value against `components.schemas[name]`. */
  validateSchema(name: string, value: unknown): string[];
  /** The response object (after following a `$ref`) for a status, or `default`. */
  response(method: string, pathTemplate: string, status: number): Json;
}

let cached: RunPodSpec | undefined;

export function loadRunPodSpec(): RunPodSpec {
  if (cached !== undefined) return cached;
  const doc = JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Json;
  // strict:false: the document carries OpenAPI keywords (example, x-enum-varnames, discriminator)
  // and formats (float, double) that are annotations, not JSON Schema assertions.
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateSchema: false });
  addFormats(ajv);
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addSchema(doc, SPEC_ID);
  const compiled = new Map<string, ValidateFunction>();

  const byPointer = (pointer: string): ValidateFunction => {
    const known = compiled.get(pointer);
    if (known !== undefined) return known;
    const fn = ajv.compile({ $ref: `${SPEC_ID}#${pointer}` });
    compiled.set(pointer, fn);
    return fn;
  };
  const errorsOf = (fn: ValidateFunction, value: unknown): string[] =>
    fn(value)
      ? []
      : (fn.errors ?? []).map(
          (e) => `${e.instancePath || '$'} ${e.message ?? ''} ${JSON.stringify(e.params)}`,
        );
  const escape = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

  const paths = doc.paths as Record<string, Record<string, { responses: Record<string, Json> }>>;
  function responseEntry(
    method: string,
    pathTemplate: string,
    status: number,
  ): { pointer: string; response: Json } {
    const op = paths[pathTemplate]?.[method.toLowerCase()];
    if (op === undefined) throw new Error(`the spec has no ${method} ${pathTemplate}`);
    const key = String(status) in op.responses ? String(status) : 'default';
    let pointer = `/paths/${escape(pathTemplate)}/${method.toLowerCase()}/responses/${key}`;
    let response = op.responses[key];
    if (response === undefined)
      throw new Error(`the spec has no ${status} (nor default) for ${method} ${pathTemplate}`);
    const ref = response.$ref;
    if (typeof ref === 'string') {
      pointer = ref.slice(1);
      const name = ref.split('/').pop() ?? '';
      const target = ((doc.components as Json).responses as Record<string, Json>)[name];
      if (target === undefined) throw new Error(`the spec's ${ref} points at no response`);
      response = target;
    }
    return { pointer, response };
  }

  cached = {
    response: (method, pathTemplate, status) => responseEntry(method, pathTemplate, status).response,
    validateResponse(method, pathTemplate, status, contentType, body) {
      const { pointer, response } = responseEntry(method, pathTemplate, status);
      const content = response.content as Record<string, unknown> | undefined;
      if (content === undefined)
        return body === undefined || body === '' ? [] : [`${status} has no body in the spec, got one`];
      const mediaType = (contentType ?? '').split(';')[0]?.trim() ?? '';
      if (!(mediaType in content))
        return [`content type "${mediaType}" is not one of ${Object.keys(content).join(', ')}`];
      return errorsOf(byPointer(`${pointer}/content/${escape(mediaType)}/schema`), body);
    },
    validateSchema: (name, value) => errorsOf(byPointer(`/components/schemas/${name}`), value),
  };
  return cached;
}
