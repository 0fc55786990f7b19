/**
 * Bad input never reaches a 5xx: fast-check sends generated requests to every route the api
 * declares (read from the Hono app itself, so a new route is fuzzed the day it lands), with
 * path parameters, query strings, content types and bodies of every bad shape: malformed and
 * deeply nested JSON, YAML alias bombs, unicode and NUL bytes, option-like refs, path-escaping
 * paths, huge numbers, bad cron strings and time zones. Every answer must be below 500, the
 * process must keep its memory, and the database must hold nothing half-made.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { useApiSystem } from '../support/norn.js';

const TOKEN = 'fuzz-token-0123456789abcdef';
const ctx = useApiSystem({ NORN_API_TOKEN: TOKEN, NORN_MAX_BODY_BYTES: String(1024 * 1024) });
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);

/** Strings an attacker or a confused client sends. */
const nasty = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '--upload-pack=touch /tmp/pwned',
    '-c core.sshCommand=sh',
    '../../../etc/passwd',
    '/etc/shadow',
    'Dockerfile/../../x',
    'migrations/../../../../root',
    '\u0000',
    'a\u0000b',
    '💥'.repeat(300),
    '9'.repeat(400),
    '1e309',
    '-0',
    'NaN',
    '* * * * * * *',
    '61 25 32 13 8',
    '@every 1s',
    'Mars/Olympus_Mons',
    'UTC+99',
    '${jndi:ldap://x}',
    '<script>alert(1)</script>',
    'main',
    'HEAD',
  ),
);

const jsonValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.oneof(fc.integer(), fc.double(), fc.constant(Number.MAX_SAFE_INTEGER), fc.constant(1e308)),
    nasty,
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(
      fc.oneof(
        nasty,
        fc.constantFrom('name', 'repo', 'processes', 'ref', 'env', 'schedule', 'timezone', 'path'),
      ),
      tie('value'),
      { maxKeys: 5 },
    ),
  ),
})).value;

/** A plausible spec with some fields replaced by bad values: deeper than random JSON gets. */
const spec = fc.record({
  name: fc.oneof(fc.constantFrom('fuzzed', 'fuzz-app', 'platform'), nasty),
  repo: fc.oneof(
    fc.record({ url: fc.oneof(fc.constant('file:///nonexistent'), nasty), branch: nasty }),
    jsonValue,
  ),
  processes: fc.oneof(
    fc.dictionary(
      fc.oneof(fc.constant('web'), nasty),
      fc.record({
        port: fc.oneof(fc.integer(), nasty),
        schedule: nasty,
        timezone: nasty,
        replicas: fc.oneof(fc.integer(), fc.double()),
      }),
      { maxKeys: 3 },
    ),
    jsonValue,
  ),
  build: fc.record({ dockerfile: nasty, test: nasty }),
  path: nasty,
  drift: fc.record({ schedule: nasty, timezone: nasty }),
});

const deepJson = fc
  .integer({ min: 100, max: 5_000 })
  .map((n) => `${'['.repeat(n)}${']'.repeat(n)}`);
const yamlBomb = fc.constant(
  [
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...Array.from({ length: 8 }, (_, i) => {
      const prev = String.fromCharCode(97 + i);
      const name = String.fromCharCode(98 + i);
      return `${name}: &${name} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`;
    }),
  ].join('\n'),
);

const body = fc.oneof(
  jsonValue.map((v) => JSON.stringify(v)),
  spec.map((v) => JSON.stringify(v)),
  nasty,
  deepJson,
  yamlBomb,
  fc.constant('{"unterminated": '),
  fc.constant(''),
);

const contentType = fc.constantFrom(
  'application/json',
  'application/yaml',
  'text/yaml',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  undefined,
);

const param = fc.oneof(
  fc.constantFrom('fuzzed', 'platform', '1', '0', '-1', '00000000-0000-0000-0000-000000000000'),
  fc.constantFrom('fuzzed', 'platform'),
  nasty.filter((s) => s.length > 0),
);

describe('the api under generated bad input', () => {
  beforeAll(async () => {
    // Real subjects, so generated requests for them reach their handlers, not only a 404.
    const post = (path: string, body: unknown) =>
      ctx.app.request(path, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (await post('/api/apps', { name: 'fuzzed', processes: { web: { port: 18_733 } } })).status,
    ).toBe(201);
    expect(
      (
        await post('/api/stacks', {
          name: 'platform',
          repo: { url: 'file:///nonexistent/infra', branch: 'main' },
        })
      ).status,
    ).toBe(201);
  });

  it(`answers ${RUNS} generated requests across every route below 500, keeping its memory`, async () => {
    const routes = ctx.app.routes
      .filter((r) => r.method !== 'ALL' && !r.path.includes('*'))
      .map((r) => ({ method: r.method, path: r.path }));
    const unique = [...new Map(routes.map((r) => [`${r.method} ${r.path}`, r])).values()];
    expect(unique.length).toBeGreaterThan(30);
    const seen = new Set<string>();
    const statuses = new Map<number, number>();
    const before = process.memoryUsage().heapUsed;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...unique),
        fc.array(param, { minLength: 4, maxLength: 4 }),
        fc.dictionary(
          fc.constantFrom('limit', 'before', 'kind', 'pullRequest', 'format', 'follow'),
          nasty,
          {
            maxKeys: 3,
          },
        ),
        body,
        contentType,
        fc.integer({ min: 0, max: 9 }).map((n) => n > 0), // mostly with the token
        async (route, params, query, text, type, authorized) => {
          let i = 0;
          const path = route.path.replace(/:[A-Za-z]+/g, () => encodeURIComponent(params[i++]!));
          const qs = new URLSearchParams(query).toString();
          const headers: Record<string, string> = {};
          if (authorized) headers.authorization = `Bearer ${TOKEN}`;
          if (type) headers['content-type'] = type;
          const withBody = route.method !== 'GET' && route.method !== 'HEAD';
          const res = await ctx.app.request(`${path}${qs ? `?${qs}` : ''}`, {
            method: route.method,
            headers,
            ...(withBody ? { body: text } : {}),
          });
          const answer = await res.text();
          seen.add(`${route.method} ${route.path}`);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (res.status >= 500)
            throw new Error(
              `${route.method} ${path}?${qs} → ${res.status}: ${answer.slice(0, 500)}`,
            );
        },
      ),
      { numRuns: RUNS, interruptAfterTimeLimit: 240_000 },
    );
    expect(seen.size).toBe(unique.length);
    if (process.env.FUZZ_REPORT) console.log(Object.fromEntries(statuses), unique.length);
    // Most requests got past authentication and were judged on what they carried.
    const answered = [...statuses].filter(([s]) => s !== 401).reduce((n, [, c]) => n + c, 0);
    expect(answered).toBeGreaterThan(RUNS / 3);
    global.gc?.();
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(300 * 1024 * 1024);
  }, 300_000);

  it('answers a 10 MB body with 413 on every route that takes one', async () => {
    const big = 'x'.repeat(10 * 1024 * 1024);
    for (const path of [
      '/api/apps',
      '/api/stacks',
      '/api/apps/fuzzed/deploy',
      '/webhooks/github',
    ]) {
      const res = await ctx.app.request(path, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: big,
      });
      expect(res.status, path).toBe(413);
    }
  });

  it('left nothing half-made: every run has its steps, every lease a live run, every app a spec', async () => {
    const { rows } = await ctx.system.db.query<{ problem: string }>(`
      SELECT 'run ' || r.id || ' has ' || count(s.idx) || ' step rows of ' || cardinality(r.steps) AS problem
        FROM runs r LEFT JOIN run_steps s ON s.run_id = r.id
        GROUP BY r.id HAVING count(s.idx) <> cardinality(r.steps)
      UNION ALL
      SELECT 'lease ' || l.scope || ' held by ' || r.status || ' run ' || r.id
        FROM leases l JOIN runs r ON r.id = l.run_id WHERE r.status NOT IN ('running', 'cancelling')
      UNION ALL
      SELECT 'app ' || id || ' of kind app without processes' FROM apps
        WHERE kind = 'app' AND deleted_at IS NULL AND jsonb_typeof(spec->'processes') <> 'object'
      UNION ALL
      SELECT 'stack ' || s.id || ' without its subject row' FROM stacks s
        LEFT JOIN apps a ON a.id = s.id AND a.kind = 'stack' WHERE a.id IS NULL`);
    expect(rows.map((r) => r.problem)).toEqual([]);
  });
});
