/**
 * Issue 7, items 8 and 9 (the infraspec's part) and hostile YAML: size limits per field and count,
 * NUL and control characters in every string, and documents built to exhaust the parser.
 */
import { describe, expect, it } from 'vitest';
import { parseInfraspec, SPEC_LIMITS } from '../../src/shared/spec/infraspec.js';
import { formatPath } from '../../src/shared/spec/problems.js';
import { aSpec, billionLaughs, problemsOf, specOf } from '../support/infraspec.js';

const many = <T>(n: number, item: (i: number) => T) => Array.from({ length: n }, (_, i) => item(i));
const envOf = (n: number, value = 'v') =>
  Object.fromEntries(many(n, (i) => [`K${i}`, value])) as Record<string, string>;
const web = (p: Record<string, unknown>) => aSpec({ processes: { web: { port: 8080, ...p } } });
const L = SPEC_LIMITS;

describe('limits per field and per count, each named by its path', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['env value', aSpec({ env: { BIG: 'x'.repeat(L.envValueLength + 1) } }), 'env.BIG', /32768/],
    ['env keys', aSpec({ env: envOf(L.envKeys + 1) }), 'env', /has 257 variables; at most 256/],
    ['process env keys', web({ env: envOf(L.envKeys + 1) }), 'processes.web.env', /at most 256/],
    [
      'env key length',
      aSpec({ env: { ['K'.repeat(L.envKeyLength + 1)]: 'v' } }),
      `env.${'K'.repeat(257)}`,
      /not a valid key: must be at most 256 characters/,
    ],
    [
      'processes',
      aSpec({ processes: Object.fromEntries(many(L.processes + 1, (i) => [`p${i}`, {}])) }),
      'processes',
      /has 33 processes; at most 32/,
    ],
    ['replicas', web({ replicas: L.replicas + 1 }), 'processes.web.replicas', /at most 100/],
    [
      'secrets',
      aSpec({ secrets: many(L.secrets + 1, (i) => `S${i}`) }),
      'secrets',
      /has 257 secrets; at most 256/,
    ],
    [
      'endpoints',
      aSpec({ endpoints: many(L.endpoints + 1, (i) => ({ url: `h${i}.example.com` })) }),
      'endpoints',
      /has 65 endpoints; at most 64/,
    ],
    [
      'volumes',
      aSpec({ volumes: many(L.volumes + 1, (i) => ({ name: `v${i}`, mount: `/v${i}` })) }),
      'volumes',
      /has 33 volumes; at most 32/,
    ],
    [
      'command',
      web({ command: 'x'.repeat(L.commandLength + 1) }),
      'processes.web.command',
      /32768/,
    ],
    [
      'build.test',
      aSpec({ build: { test: 'x'.repeat(L.commandLength + 1) } }),
      'build.test',
      /32768/,
    ],
    [
      'repo.url',
      aSpec({ repo: { url: `https://h.example.com/${'a'.repeat(L.urlLength)}` } }),
      'repo.url',
      /at most 2048 characters/,
    ],
    [
      'a path',
      aSpec({ migrations: 'm/'.repeat(L.pathLength) }),
      'migrations',
      /at most 1024 characters/,
    ],
    [
      'health.path',
      web({ health: { path: `/${'h'.repeat(L.pathLength)}` } }),
      'processes.web.health.path',
      /at most 1024 characters/,
    ],
    [
      'repo.branch',
      aSpec({ repo: { url: 'https://h.example.com/a', branch: 'b'.repeat(256) } }),
      'repo.branch',
      /at most 255 characters/,
    ],
    [
      'a region',
      aSpec({ endpoints: [{ url: 'a.example.com', region: 'r'.repeat(256) }] }),
      'endpoints[0].region',
      /at most 255/,
    ],
    [
      'a host name',
      aSpec({ hosts: { external: `${'a.'.repeat(127)}com` } }),
      'hosts.external',
      /at most 253/,
    ],
    [
      'a duration text',
      aSpec({ deployPolicy: { healthTimeout: '1'.repeat(256) } }),
      'deployPolicy.healthTimeout',
      /at most 255/,
    ],
  ];

  it.each(cases)('%s', (_label, input, path, message) => {
    expect(problemsOf(input)).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('accepts every field at its limit', () => {
    const spec = specOf(
      aSpec({
        env: { ...envOf(L.envKeys - 1), BIG: 'x'.repeat(L.envValueLength) },
        processes: { web: { port: 8080, command: 'y'.repeat(L.commandLength) } },
        secrets: many(L.secrets, (i) => `S${i}`),
      }),
    );
    expect(Object.keys(spec.env ?? {})).toHaveLength(L.envKeys);
  });

  it('refuses a spec over 256 KiB once read, even when every field is within its limit', () => {
    const processes = Object.fromEntries(
      many(16, (i) => [`p${i}`, { env: envOf(200, 'v'.repeat(100)) }]),
    );
    expect(problemsOf(aSpec({ processes }))).toEqual([
      { path: '', message: expect.stringMatching(/larger than 256 KiB once read \(as JSON/) },
    ]);
  });

  it('refuses a spec that reaches 256 KiB only once defaults are filled in (as stored)', () => {
    // 32 bare processes gain about 1.5 KiB of defaults; the env fills the input to just below 256 KiB.
    const processes = Object.fromEntries(many(32, (i) => [`p${i}`, {}]));
    const env: Record<string, string> = {};
    const bytes = () => Buffer.byteLength(JSON.stringify(aSpec({ processes, env })));
    while (bytes() < L.specBytes - 600)
      env[`F${Object.keys(env).length}`] = 'f'.repeat(
        Math.min(30_000, L.specBytes - 600 - bytes()),
      );
    expect(problemsOf(aSpec({ processes, env }))).toEqual([
      { path: '', message: expect.stringMatching(/larger than 256 KiB as stored/) },
    ]);
  });

  it('refuses infraspec text over 512 KiB before parsing it', () => {
    const text = `name: app\nprocesses: {web: {}}\n${'# padding\n'.repeat(60_000)}`;
    expect(problemsOf(text)).toEqual([
      { path: '', message: 'the infraspec text is 586 KiB; at most 512 KiB is allowed' },
    ]);
  });

  it('refuses a 50 MB env value at once: named by its path when parsed, by size as text', () => {
    const big = 'x'.repeat(50 * 1024 * 1024);
    const started = performance.now();
    expect(problemsOf(aSpec({ env: { BIG: big } }))).toEqual([
      { path: 'env.BIG', message: expect.stringMatching(/^is 50 MiB long; no text/) },
    ]);
    expect(problemsOf(JSON.stringify(aSpec({ env: { BIG: big } })))).toEqual([
      { path: '', message: expect.stringMatching(/^the infraspec text is 50 MiB/) },
    ]);
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

/** Every string in a spec that uses every string field, with its path. */
const MAXIMAL = {
  name: 'shop',
  repo: { url: 'https://git.example.com/shop.git', branch: 'main', repoWeb: 'https://x.example' },
  build: { dockerfile: 'Dockerfile', test: 'npm test' },
  processes: {
    web: {
      port: 8080,
      command: 'node server.js',
      health: { path: '/healthz', interval: '10s', timeout: '5s' },
      env: { LOG: 'debug' },
    },
    job: { schedule: '0 3 * * *', timezone: 'Europe/Paris', command: 'run' },
  },
  env: { NODE_ENV: 'production' },
  secrets: ['TOKEN'],
  migrations: 'db/migrations',
  infrastructure: { postgres: { database: 'shop' } },
  endpoints: [{ url: 'shop.example.com', region: 'eu' }],
  hosts: { internal: 'shop.internal', external: 'shop.example.com' },
  volumes: [{ name: 'uploads', mount: '/data' }],
  deployPolicy: { concurrency: 'queue', minHealthyTime: '5s', healthTimeout: '1m' },
  target: 'docker',
};

function stringLeaves(value: unknown, path: PropertyKey[] = []): PropertyKey[][] {
  if (typeof value === 'string') return [path];
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) =>
    stringLeaves(v, [...path, Array.isArray(value) ? Number(k) : k]),
  );
}

function withValue(spec: unknown, path: PropertyKey[], value: string): unknown {
  const copy = structuredClone(spec) as Record<PropertyKey, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<PropertyKey, unknown>;
  node[path.at(-1)!] = value;
  return copy;
}

describe('NUL and control characters', () => {
  const leaves = stringLeaves(MAXIMAL);

  it('starts from a valid spec that has a string in every string field', () => {
    expect(specOf(MAXIMAL).name).toBe('shop');
    expect(leaves.length).toBeGreaterThanOrEqual(28);
  });

  it.each(leaves.map((path) => [formatPath(path), path] as const))(
    'refuses "\\u0000" in %s with its path',
    (shown, path) => {
      const problems = problemsOf(withValue(MAXIMAL, path, 'a\u0000b'));
      const enumField = /concurrency|target/.test(shown);
      expect(problems).toContainEqual({
        path: shown,
        message: expect.stringMatching(enumField ? /must be one of/ : /NUL characters/),
      });
    },
  );

  it.each([
    ['an env key', aSpec({ env: { 'A\u0000': 'v' } }), 'env["A\\u0000"]'],
    ['a process name', aSpec({ processes: { 'w\u0000': {} } }), 'processes["w\\u0000"]'],
  ])('refuses NUL in %s', (_label, input, path) => {
    expect(problemsOf(input).map((p) => p.path)).toContain(path);
  });

  it('refuses NUL written as a YAML escape', () => {
    expect(problemsOf('name: app\nprocesses: {web: {}}\nenv: {A: "x\\0y"}\n')).toEqual([
      { path: 'env.A', message: 'must not contain NUL characters (\\u0000, found at character 2)' },
    ]);
  });

  it.each([
    ['repo.branch', aSpec({ repo: { url: 'https://h.example.com/a', branch: 'main\n' } })],
    ['processes.web.health.path', web({ health: { path: '/h\u001b' } })],
    ['endpoints[0].region', aSpec({ endpoints: [{ url: 'a.example.com', region: 'e\tu' }] })],
    ['processes.web.command', web({ command: 'echo \u0007' })],
  ])('refuses control characters in %s', (path, input) => {
    expect(problemsOf(input)).toContainEqual({
      path,
      message: expect.stringMatching(/control characters .*found U\+00/),
    });
  });

  it('keeps tabs and line breaks in commands and anything but NUL in env values', () => {
    const spec = specOf(
      web({ command: 'set -e\n\techo hi\r\n', env: { PEM: 'a\nb', COLOR: '\u001b[0m' } }),
    );
    expect(spec.processes.web?.command).toBe('set -e\n\techo hi\r\n');
    expect(spec.processes.web?.env).toEqual({ PEM: 'a\nb', COLOR: '\u001b[0m' });
  });
});

describe('hostile YAML', () => {
  const timed = (input: unknown) => {
    const started = performance.now();
    const result = parseInfraspec(input);
    return { result, ms: performance.now() - started };
  };

  it('refuses a billion-laughs alias bomb, fast', () => {
    const { result, ms } = timed(billionLaughs());
    expect(result).toEqual({
      ok: false,
      problems: [{ path: '', message: expect.stringMatching(/Excessive alias count/) }],
    });
    expect(ms).toBeLessThan(5_000);
  });

  it('refuses a few aliases that expand a small text past 256 KiB before checking the fields', () => {
    const env = many(2_000, (i) => `  K${i}: ${'v'.repeat(40)}`).join('\n');
    const processes = many(20, (i) => `  p${i}: {env: *shared}`).join('\n');
    const text = `name: app\nenv: &shared\n${env}\nprocesses:\n${processes}\n`;
    expect(text.length).toBeLessThan(L.textBytes);
    const { result, ms } = timed(text);
    expect(result).toEqual({
      ok: false,
      problems: [{ path: '', message: expect.stringMatching(/larger than 256 KiB once read/) }],
    });
    expect(ms).toBeLessThan(5_000);
  });

  it('refuses an alias inside its own anchor (a cycle)', () => {
    expect(problemsOf('name: app\nprocesses: &p\n  web: *p\n')).toEqual([
      {
        path: '',
        message: expect.stringMatching(/alias refers to a collection it is itself inside of/),
      },
    ]);
  });

  it('refuses brackets nested deeper than 32 levels without parsing them', () => {
    const { result, ms } = timed(`name: app\nx: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`);
    expect(result).toEqual({
      ok: false,
      problems: [{ path: '', message: 'the infraspec nests [ ] and { } more than 32 levels deep' }],
    });
    expect(ms).toBeLessThan(5_000);
  });

  it('still reads brackets inside text, and merge keys', () => {
    const spec = specOf(
      'name: app\nprocesses:\n  web: &w {port: 80, command: "echo [[[[ {{{{", env: {A: "]]]"}}\n  admin:\n    <<: *w\n    port: 81\n',
    );
    expect(spec.processes.admin).toMatchObject({ port: 81, command: 'echo [[[[ {{{{' });
  });
});
