/** The example app (examples/hello) as target tests deploy it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from './docker/engine.js';

/**
 * The example's infraspec without its database (infrastructure.postgres and migrations): the
 * target tests deploy the app itself, on a cluster that has no PostgreSQL for it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a YAML document, spread by callers
export function exampleSpecWithoutDatabase(): Record<string, any> {
  const spec = parseYaml(readFileSync(join(REPO_ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  delete spec.infrastructure;
  delete spec.migrations;
  return spec;
}
