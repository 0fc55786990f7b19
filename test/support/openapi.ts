/**
 * Reading the api's OpenAPI document in tests: the operations it lists, and a validator of an
 * answer's body against the schema the document gives for its status (JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1, with `$ref`s into its components).
 */
import { createRequire } from 'node:module';

export interface Operation {
  method: string;
  /** OpenAPI form: /api/apps/{id}. */
  path: string;
  operationId: string;
}

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, OperationObject>>;
  components?: { schemas?: Record<string, unknown> };
};
type OperationObject = {
  operationId?: string;
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);

export function operations(doc: Doc): Operation[] {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.has(m))
      .map(([method, op]) => ({
        method,
        path,
        operationId: op.operationId ?? `${method} ${path}`,
      })),
  );
}

/** `/api/apps/:id` → `/api/apps/{id}` (Hono's route path in the document's form). */
export const openApiPath = (honoPath: string) => honoPath.replace(/:([^/]+)/g, '{$1}');

// ajv 8 (with its 2020-12 dialect) comes with the OpenAPI validator; the top-level ajv is older.
const requireFromValidator = createRequire(
  createRequire(import.meta.url).resolve('@seriousme/openapi-schema-validator'),
);
interface Ajv {
  addSchema(schema: unknown, key: string): Ajv;
  addFormat(name: string, format: { validate: (s: string) => boolean }): Ajv;
  compile(schema: unknown): ((data: unknown) => boolean) & { errors?: unknown[] | null };
}
const Ajv2020 = (requireFromValidator('ajv/dist/2020.js') as { default: new (o: object) => Ajv })
  .default;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `check(method, path, status, body)`: throws unless the document lists `status` for the
 * operation and `body` matches its JSON schema. Formats date-time and uuid are checked too.
 */
export function responseChecker(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('date-time', { validate: (s) => RFC3339.test(s) && !Number.isNaN(Date.parse(s)) });
  ajv.addFormat('uuid', { validate: (s) => UUID.test(s) });
  ajv.addFormat('binary', { validate: () => true });
  ajv.addSchema({ $id: 'doc', components: doc.components ?? {} }, 'doc');
  const rewrite = (schema: unknown): unknown =>
    JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"doc#/components/'));
  const compiled = new Map<string, ReturnType<Ajv['compile']>>();
  return (method: string, path: string, status: number, body: unknown) => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not in the document`);
    const response = op.responses[String(status)];
    if (!response)
      throw new Error(
        `${method} ${path} answered ${status}, which the document does not list (${Object.keys(op.responses).join(', ')}): ${JSON.stringify(body).slice(0, 400)}`,
      );
    const schema = response.content?.['application/json']?.schema;
    if (!schema) throw new Error(`${method} ${path} ${status} has no JSON schema`);
    const key = `${method} ${path} ${status}`;
    let validate = compiled.get(key);
    if (!validate) compiled.set(key, (validate = ajv.compile(rewrite(schema))));
    if (!validate(body))
      throw new Error(
        `${key}: the body does not match its schema: ${JSON.stringify(validate.errors, null, 1)}\nbody: ${JSON.stringify(body).slice(0, 1500)}`,
      );
  };
}
