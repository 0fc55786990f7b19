/** labelSelector and fieldSelector query parameters, as the apiserver parses them. */
import { badRequest } from './status.js';

type Obj = Record<string, unknown>;
type Test = (labels: Record<string, string>) => boolean;

export function parseLabelSelector(selector: string | null): Test {
  if (!selector) return () => true;
  const parts = selector.match(/([^,(]+(\([^)]*\))?)/g) ?? [];
  const tests = parts.map((raw): Test => {
    const p = raw.trim();
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(p);
    if (m) {
      const [, key, op, values] = m as unknown as [string, string, string, string];
      const set = values.split(',').map((v) => v.trim());
      return op === 'in'
        ? (l) => set.includes(l[key] ?? '\0')
        : (l) => !set.includes(l[key] ?? '\0');
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(p);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = /^(!?)([\w./-]+)$/.exec(p);
    if (m) {
      const [, not, key] = m as unknown as [string, string, string];
      return not ? (l) => !(key in l) : (l) => key in l;
    }
    throw badRequest(`unable to parse requirement: found '${p}', expected: identifier`);
  });
  return (labels) => tests.every((t) => t(labels));
}

export function parseFieldSelector(selector: string | null): (obj: Obj) => boolean {
  if (!selector) return () => true;
  const tests = selector.split(',').map((raw) => {
    const m = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(raw.trim());
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${raw}'`);
    const [, field, op, value] = m as unknown as [string, string, string, string];
    if (!['metadata.name', 'metadata.namespace', 'status.phase', 'spec.nodeName'].includes(field))
      throw badRequest(
        `"${field}" is not a known field selector: only "metadata.name", "metadata.namespace"`,
      );
    const read = (obj: Obj): unknown =>
      field
        .split('.')
        .reduce<unknown>(
          (cur, k) => (cur && typeof cur === 'object' ? (cur as Obj)[k] : undefined),
          obj,
        );
    return (obj: Obj): boolean => (op === '!=' ? read(obj) !== value : (read(obj) ?? '') === value);
  });
  return (obj) => tests.every((t) => t(obj));
}
