/**
 * `repo.webhookSecret` is write-only: it is taken out of an app's infraspec (the parsed spec and
 * the submitted text alike) before either is stored, and kept in a column of its own.
 */
import { parseDocument, stringify } from 'yaml';

export interface SplitSecret<S> {
  spec: S;
  source: string;
  /** Undefined: the infraspec names none. */
  webhookSecret: string | undefined;
}

/**
 * The spec and source without the secret. YAML keeps its comments and layout (only the key goes);
 * JSON is written again. Should the secret still show in the text (an alias, a merge key), the
 * source becomes the stripped spec itself: it never leaves with the secret in it.
 */
export function splitWebhookSecret<S extends { repo?: { webhookSecret?: string } }>(
  spec: S,
  source: string,
  format: 'yaml' | 'json',
): SplitSecret<S> {
  const webhookSecret = spec.repo?.webhookSecret;
  if (webhookSecret === undefined) return { spec, source, webhookSecret };
  const { webhookSecret: _drop, ...repo } = spec.repo!;
  const stripped = { ...spec, repo };
  let text = format === 'json' ? jsonWithout(source) : yamlWithout(source);
  if (text === undefined || text.includes(webhookSecret))
    text = format === 'json' ? JSON.stringify(stripped, null, 2) : stringify(stripped);
  return { spec: stripped, source: text, webhookSecret };
}

function jsonWithout(source: string): string | undefined {
  try {
    const value = JSON.parse(source) as { repo?: Record<string, unknown> };
    if (value.repo && typeof value.repo === 'object') delete value.repo.webhookSecret;
    return JSON.stringify(value, null, 2);
  } catch {
    return undefined; // JSON-looking YAML: the stripped spec is written instead
  }
}

function yamlWithout(source: string): string | undefined {
  try {
    const doc = parseDocument(source, { uniqueKeys: false, merge: true });
    doc.deleteIn(['repo', 'webhookSecret']);
    return doc.toString();
  } catch {
    return undefined;
  }
}
