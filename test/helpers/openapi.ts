// Loads the official multi-file OpenAPI 3.0 spec into self-contained JSON Schemas that ajv
// can compile: every `$ref` (relative file, file#pointer, or #pointer) becomes a local
// `#/definitions/...` pointer, and OpenAPI-only keywords (`nullable`, `example`, `x-*`) are
// rewritten to their JSON Schema meaning or dropped.

import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/** The spec folder: MARKET_OPENAPI_DIR, or shared/market-api beside the repository. */
export const SPEC_DIR = process.env.MARKET_OPENAPI_DIR ?? resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../shared/market-api/partner-api/openapi',
);
export const SPEC_ROOT = resolve(SPEC_DIR, 'openapi.subset.yaml');
/** The notification spec (what the Market pushes): NOTIFICATION_OPENAPI_DIR, or notification-api beside the partner spec. */
export const NOTIFICATION_SPEC_DIR = process.env.NOTIFICATION_OPENAPI_DIR ?? resolve(SPEC_DIR, '../../notification-api/openapi');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

const fileCache = new Map<string, Json>();

function loadFile(file: string): Json {
  let doc = fileCache.get(file);
  if (doc === undefined) {
    doc = parse(readFileSync(file, 'utf8')) as Json;
    fileCache.set(file, doc);
  }
  return doc;
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function followPointer(doc: Json, pointer: string): Json {
  let node = doc;
  for (const raw of pointer.replace(/^#?\/?/, '').split('/').filter((s) => s !== '')) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
    const next: Json | undefined = Array.isArray(node) ? node[Number(key)] : isObject(node) ? node[key] : undefined;
    if (next === undefined) throw new Error(`OpenAPI pointer ${pointer} not found`);
    node = next;
  }
  return node;
}

/** Collects the schemas that `$ref`s point at, one `definitions` entry per target. */
class Bundler {
  readonly definitions: JsonObject = {};

  /**
   * Copies `node` (which lives in `file`), replacing each `$ref` by a pointer into
   * `definitions`. Targets are bundled once, so recursive schemas (RegionDTO.parent) terminate.
   */
  bundle(node: Json, file: string): Json {
    if (Array.isArray(node)) return node.map((item) => this.bundle(item, file));
    if (!isObject(node)) return node;

    const ref = node.$ref;
    if (typeof ref === 'string') {
      const [filePart = '', pointer = ''] = ref.split('#');
      const target = filePart === '' ? file : resolve(dirname(file), filePart);
      const name = `${relative(SPEC_DIR, target)}${pointer}`.replace(/[^A-Za-z0-9_.-]/g, '_');
      if (!(name in this.definitions)) {
        this.definitions[name] = {};
        this.definitions[name] = toJsonSchema(this.bundle(followPointer(loadFile(target), pointer), target));
      }
      // OpenAPI 3.0 ignores the siblings of $ref (here only descriptions).
      return { $ref: `#/definitions/${name}` };
    }

    const out: JsonObject = {};
    for (const [key, value] of Object.entries(node)) out[key] = this.bundle(value, file);
    return out;
  }

  /** A self-contained JSON Schema for `node`: its body plus every definition it reaches. */
  schema(node: Json, file: string): JsonObject {
    const body = toJsonSchema(this.bundle(node, file));
    // A root `$ref` would hide its sibling `definitions` in draft 7, so wrap it.
    return { allOf: [body], definitions: this.definitions };
  }
}

/** Rewrites OpenAPI 3.0 schema keywords into JSON Schema (draft 7) for ajv. */
export function toJsonSchema(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(toJsonSchema);
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'nullable' || key === 'example' || key === 'deprecated' || key.startsWith('x-')) continue;
    // `properties` maps names to schemas; its keys are not keywords.
    out[key] = key === 'properties' && isObject(value)
      ? Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, toJsonSchema(sub)]))
      : toJsonSchema(value);
  }
  if (schema.nullable === true) {
    // An enum must list null too, or `type: [..., 'null']` alone would not admit it.
    if (typeof out.type === 'string') out.type = [out.type, 'null'];
    if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
    if (out.type === undefined && out.enum === undefined) return { anyOf: [out, { type: 'null' }] };
  }
  return out;
}

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

export interface OperationSchemas {
  operationId: string;
  /** The JSON request body schema, self-contained (refs bundled into `definitions`). */
  request: JsonObject | undefined;
  /** Response body schemas by status code ('200', '400', ...). */
  responses: Record<string, JsonObject>;
}

/** The request and response schemas of one operation of the subset spec, found by path and method. */
export function loadOperation(path: string, method: HttpMethod): OperationSchemas {
  const root = loadFile(SPEC_ROOT);
  const pathRef = followPointer(root, `/paths/${path.replaceAll('/', '~1')}`);
  const pathFile = isObject(pathRef) && typeof pathRef.$ref === 'string' ? resolve(SPEC_DIR, pathRef.$ref) : SPEC_ROOT;
  const pathItem = pathFile === SPEC_ROOT ? pathRef : loadFile(pathFile);
  const op = isObject(pathItem) ? pathItem[method] : undefined;
  if (!isObject(op)) throw new Error(`${method.toUpperCase()} ${path} not in spec`);

  // Response objects are themselves $ref'd files (responses/400.yaml), so resolve one level by hand.
  const resolveObject = (node: Json | undefined, file: string): { node: Json | undefined; file: string } => {
    if (isObject(node) && typeof node.$ref === 'string') {
      const target = resolve(dirname(file), node.$ref);
      return { node: loadFile(target), file: target };
    }
    return { node, file };
  };
  const jsonBodySchema = (holder: Json | undefined, file: string): JsonObject | undefined => {
    const { node, file: at } = resolveObject(holder, file);
    const media = isObject(node) && isObject(node.content) ? node.content['application/json'] : undefined;
    return isObject(media) && media.schema !== undefined ? new Bundler().schema(media.schema, at) : undefined;
  };

  const responses: Record<string, JsonObject> = {};
  if (isObject(op.responses)) {
    for (const [status, response] of Object.entries(op.responses)) {
      const schema = jsonBodySchema(response, pathFile);
      if (schema !== undefined) responses[status] = schema;
    }
  }
  return { operationId: String(op.operationId), request: jsonBodySchema(op.requestBody, pathFile), responses };
}

function loadSchemaOf(specDir: string, name: string): JsonObject {
  const file = resolve(specDir, 'components/schemas', `${name}.yaml`);
  return new Bundler().schema(loadFile(file), file);
}

/** One component schema of the partner spec (e.g. `OrderDTO`) as a self-contained JSON Schema. */
export function loadComponentSchema(name: string): JsonObject {
  return loadSchemaOf(SPEC_DIR, name);
}

/** One component schema of the notification spec (e.g. `OrderCreatedNotificationDTO`), self-contained. */
export function loadNotificationSchema(name: string): JsonObject {
  return loadSchemaOf(NOTIFICATION_SPEC_DIR, name);
}

/**
 * Every `example` in the raw YAML of a component schema and the schemas it references
 * (examples are dropped by the conversion), keyed by the file where each sits.
 */
export function collectExamples(name: string): { file: string; at: string; example: Json }[] {
  const found: { file: string; at: string; example: Json }[] = [];
  const seen = new Set<string>();
  const visitFile = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const walk = (node: Json, at: string): void => {
      if (Array.isArray(node)) node.forEach((item, i) => walk(item, `${at}[${i}]`));
      if (!isObject(node)) return;
      if (typeof node.$ref === 'string') {
        const [filePart = ''] = node.$ref.split('#');
        if (filePart !== '') visitFile(resolve(dirname(file), filePart));
      }
      if (node.example !== undefined) found.push({ file: relative(SPEC_DIR, file), at, example: node.example });
      for (const [key, value] of Object.entries(node)) if (key !== 'example') walk(value, `${at}.${key}`);
    };
    walk(loadFile(file), '$');
  };
  visitFile(resolve(SPEC_DIR, 'components/schemas', `${name}.yaml`));
  return found;
}
