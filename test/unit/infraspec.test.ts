import { defaultRepeatStrategy } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { checkDockerfilePath } from '../../src/pipelines/deploy/steps/build.js';
import { slotsOf } from '../../src/pipelines/deploy/docker-runtime.js';
import { endpointToRoute } from '../../src/shared/drivers/cloudflared-routes.js';
import { isNornError } from '../../src/shared/errors.js';
import {
  durationMs,
  parseDuration,
  parseInfraspec,
  schedulerRepeat,
  type Infraspec,
} from '../../src/shared/spec/infraspec.js';
import { aSchedule, aSpec, MINIMAL, problemsOf, REPROS, specOf } from '../support/infraspec.js';

const COMPLETE_YAML = `
name: shop
deploy: true
repo:
  url: git@github.com:acme/shop.git
  branch: release
  autoDeploy: true
  repoWeb: https://github.com/acme/shop
build:
  dockerfile: docker/Dockerfile.prod
  test: npm test
processes:
  web:
    port: 8080
    command: node server.js
    health: { path: /healthz, interval: 15s }
    replicas: 2
    resources: { cpu: 500, memory: 256 }
    env: { LOG_LEVEL: debug }
  nightly:
    schedule: "0 3 * * MON-FRI"
    timezone: Europe/Paris
    command: node jobs/nightly.js
  worker: {}
env:
  NODE_ENV: production
  WORKERS: 4
  FEATURE_X: true
secrets: [DATABASE_URL, STRIPE_KEY]
migrations: db/migrations
infrastructure:
  postgres: { database: shop_db }
endpoints:
  - url: shop.example.com
    region: eu
  - url: https://api.example.com/v1
hosts: { internal: shop.internal, external: shop.example.com }
volumes:
  - { name: uploads, mount: /data/uploads }
  - { name: config, mount: /etc/shop, readOnly: true, hostPath: /srv/shop/config }
  - { name: cache, mount: /var/cache/shop, size: 500Mi }
snapshots: { keep: 10 }
deployPolicy: { concurrency: supersede, minHealthyTime: 10s }
kubernetes: { namespace: shop }
target: docker
`;

const COMPLETE_PARSED: Infraspec = {
  name: 'shop',
  deploy: true,
  repo: {
    url: 'git@github.com:acme/shop.git',
    branch: 'release',
    autoDeploy: true,
    repoWeb: 'https://github.com/acme/shop',
  },
  build: { dockerfile: 'docker/Dockerfile.prod', test: 'npm test' },
  processes: {
    web: {
      port: 8080,
      command: 'node server.js',
      health: { path: '/healthz', interval: '15s', timeout: '5s' },
      replicas: 2,
      resources: { cpu: 500, memory: 256 },
      env: { LOG_LEVEL: 'debug' },
    },
    nightly: {
      schedule: '0 3 * * MON-FRI',
      timezone: 'Europe/Paris',
      command: 'node jobs/nightly.js',
      replicas: 1,
      resources: { cpu: 100, memory: 128 },
    },
    worker: { replicas: 1, resources: { cpu: 100, memory: 128 } },
  },
  env: { NODE_ENV: 'production', WORKERS: '4', FEATURE_X: 'true' },
  secrets: ['DATABASE_URL', 'STRIPE_KEY'],
  migrations: 'db/migrations',
  infrastructure: { postgres: { database: 'shop_db' } },
  endpoints: [{ url: 'shop.example.com', region: 'eu' }, { url: 'https://api.example.com/v1' }],
  hosts: { internal: 'shop.internal', external: 'shop.example.com' },
  volumes: [
    { name: 'uploads', mount: '/data/uploads', readOnly: false, size: '1Gi' },
    { name: 'config', mount: '/etc/shop', readOnly: true, hostPath: '/srv/shop/config' },
    { name: 'cache', mount: '/var/cache/shop', readOnly: false, size: '500Mi' },
  ],
  snapshots: { keep: 10 },
  deployPolicy: {
    autoRollback: true,
    concurrency: 'supersede',
    minHealthyTime: '10s',
    healthTimeout: '5m',
  },
  kubernetes: { namespace: 'shop' },
  target: 'docker',
};

/** The same spec as JSON: what a YAML-to-JSON converter makes of it (defaults still left out). */
const COMPLETE_JSON = JSON.stringify(parseYaml(COMPLETE_YAML), null, '\t');

describe('parseInfraspec: valid specs', () => {
  it('parses a complete YAML spec with defaults applied', () => {
    expect(specOf(COMPLETE_YAML)).toEqual(COMPLETE_PARSED);
  });

  it('gives the same result for the spec as JSON text and as a parsed object', () => {
    expect(COMPLETE_JSON).toMatch(/^\{\n\t"name": "shop"/);
    expect(specOf(COMPLETE_JSON)).toEqual(COMPLETE_PARSED);
    expect(specOf(JSON.parse(COMPLETE_JSON))).toEqual(COMPLETE_PARSED);
  });

  it('fills every default into a minimal spec, including absent build, snapshots and deployPolicy', () => {
    expect(specOf('name: app\nprocesses:\n  web: {port: 8080}\n')).toEqual({
      name: 'app',
      build: { dockerfile: 'Dockerfile' },
      processes: { web: { port: 8080, replicas: 1, resources: { cpu: 100, memory: 128 } } },
      snapshots: { keep: 5 },
      deployPolicy: {
        autoRollback: true,
        concurrency: 'queue',
        minHealthyTime: '30s',
        healthTimeout: '5m',
      },
      kubernetes: { namespace: 'default' },
    });
  });

  it('applies repo defaults and keeps autoRollback on when deployPolicy is present without it', () => {
    const spec = specOf(
      aSpec({
        repo: { url: 'https://github.com/acme/app.git' },
        deployPolicy: { concurrency: 'reject' },
      }),
    );
    // No branch is assumed: unset follows the repository's default branch.
    expect(spec.repo).toEqual({ url: 'https://github.com/acme/app.git', autoDeploy: false });
    expect(spec.deployPolicy.autoRollback).toBe(true);
  });

  it('supports YAML merge keys for shared process settings', () => {
    const spec = specOf(
      'name: a\nprocesses:\n  web: &base\n    port: 80\n    env: {V: 1.10}\n  admin:\n    <<: *base\n    port: 81\n',
    );
    expect(spec.processes.admin).toMatchObject({ port: 81, env: { V: '1.10' } });
  });

  it.each([
    ['https://github.com/a/b.git'],
    ['http://git.local/a/b'],
    ['ssh://git@host:2222/a/b.git'],
    ['git@gitlab.com:group/sub/repo.git'],
    ['file:///srv/git/app.git'],
  ])('accepts repo url %s', (url) => {
    expect(specOf(aSpec({ repo: { url } })).repo?.url).toBe(url);
  });

  it.each([
    ['*/5 * * * *'],
    ['0 0 12 ? * MON#2'],
    ['0 0 L * *'],
    ['0 30 9 * jan,jul mon-fri'],
    ['0 0 29 2 *'],
    ['@daily'],
  ])('accepts schedule %s', (schedule) => {
    expect(specOf(aSpec({ processes: { job: { schedule } } })).processes.job?.schedule).toBe(
      schedule,
    );
  });
});

describe('parseInfraspec: each rule rejects bad input at the right path', () => {
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['name missing', { processes: MINIMAL.processes }, 'name', /is required/],
    ['name with capitals', aSpec({ name: 'My_App' }), 'name', /lowercase/],
    ['name too long', aSpec({ name: 'a'.repeat(64) }), 'name', /at most 63/],
    ['deploy not boolean', aSpec({ deploy: 'yes' }), 'deploy', /true or false/],
    ['repo without url', aSpec({ repo: {} }), 'repo.url', /required/],
    [
      'repo url option injection',
      aSpec({ repo: { url: '--upload-pack=evil' } }),
      'repo.url',
      /must not start with "-"/,
    ],
    ['repo url unknown scheme', aSpec({ repo: { url: 'ftp://host/x' } }), 'repo.url', /https:\/\//],
    [
      'repo url with token',
      aSpec({ repo: { url: 'https://ghp_secret@github.com/a/b' } }),
      'repo.url',
      /NORN_GIT_TOKEN/,
    ],
    [
      'dockerfile absolute',
      aSpec({ build: { dockerfile: '/etc/passwd' } }),
      'build.dockerfile',
      /relative/,
    ],
    [
      'dockerfile escapes',
      aSpec({ build: { dockerfile: 'a/../../Dockerfile' } }),
      'build.dockerfile',
      /inside the repository/,
    ],
    ['no processes', aSpec({ processes: {} }), 'processes', /at least one process/],
    ['processes missing', { name: 'app' }, 'processes', /is required/],
    [
      'bad process name',
      aSpec({ processes: { Web: {} } }),
      'processes.Web',
      /not a valid key.*lowercase/,
    ],
    ['port zero', aSpec({ processes: { web: { port: 0 } } }), 'processes.web.port', /at least 1/],
    [
      'port too big',
      aSpec({ processes: { web: { port: 70000 } } }),
      'processes.web.port',
      /at most 65535/,
    ],
    [
      'port fraction',
      aSpec({ processes: { web: { port: 80.5 } } }),
      'processes.web.port',
      /whole number, not a fraction/,
    ],
    [
      'port as text',
      aSpec({ processes: { web: { port: '80' } } }),
      'processes.web.port',
      /must be a number, not text/,
    ],
    [
      'cron with 3 fields',
      aSpec({ processes: { job: { schedule: '* * *' } } }),
      'processes.job.schedule',
      /5 fields.*it has 3/,
    ],
    [
      'cron bad chars',
      aSpec({ processes: { job: { schedule: '* * * * FOO' } } }),
      'processes.job.schedule',
      /refused by the scheduler: .*"foo"/,
    ],
    [
      'bad timezone',
      aSpec({ processes: { job: { schedule: '* * * * *', timezone: 'Mars/Base' } } }),
      'processes.job.timezone',
      /IANA time zone/,
    ],
    [
      'health without path',
      aSpec({ processes: { web: { health: {} } } }),
      'processes.web.health.path',
      /required/,
    ],
    [
      'health path relative',
      aSpec({ processes: { web: { health: { path: 'healthz' } } } }),
      'processes.web.health.path',
      /start with "\/"/,
    ],
    [
      'health bad interval',
      aSpec({ processes: { web: { health: { path: '/', interval: 'often' } } } }),
      'processes.web.health.interval',
      /not a valid duration/,
    ],
    [
      'health zero timeout',
      aSpec({ processes: { web: { health: { path: '/', timeout: '0s' } } } }),
      'processes.web.health.timeout',
      /longer than zero/,
    ],
    [
      'negative replicas',
      aSpec({ processes: { web: { replicas: -1 } } }),
      'processes.web.replicas',
      /at least 0/,
    ],
    [
      'cpu zero',
      aSpec({ processes: { web: { resources: { cpu: 0 } } } }),
      'processes.web.resources.cpu',
      /at least 1/,
    ],
    [
      'scheduled with port',
      aSpec({ processes: { job: { schedule: '* * * * *', port: 80 } } }),
      'processes.job.port',
      /serves no traffic/,
    ],
    [
      'scheduled with replicas',
      aSpec({ processes: { job: { schedule: '* * * * *', replicas: 2 } } }),
      'processes.job.replicas',
      /several times/,
    ],
    [
      'env key with dash',
      aSpec({ env: { 'MY-VAR': 'x' } }),
      'env.MY-VAR',
      /not a valid key.*environment variable names/,
    ],
    ['env null value', aSpec({ env: { EMPTY: null } }), 'env.EMPTY', /has no value/],
    ['env list value', aSpec({ env: { LIST: [1] } }), 'env.LIST', /string, number or boolean/],
    [
      'process env key',
      aSpec({ processes: { web: { env: { '1A': 'x' } } } }),
      'processes.web.env.1A',
      /environment variable names/,
    ],
    [
      'secret bad key',
      aSpec({ secrets: ['ok', 'not ok'] }),
      'secrets[1]',
      /letters, digits and "_"/,
    ],
    [
      'secret twice',
      aSpec({ secrets: ['A', 'B', 'A'] }),
      'secrets[2]',
      /already listed at secrets\[0\]/,
    ],
    [
      'migrations escapes',
      aSpec({ migrations: '../other/migrations' }),
      'migrations',
      /inside the repository/,
    ],
    [
      'postgres without database',
      aSpec({ infrastructure: { postgres: {} } }),
      'infrastructure.postgres.database',
      /required/,
    ],
    [
      'postgres bad database',
      aSpec({ infrastructure: { postgres: { database: 'my-db' } } }),
      'infrastructure.postgres.database',
      /letters, digits and "_"/,
    ],
    [
      'endpoint without url',
      aSpec({ endpoints: [{ region: 'eu' }] }),
      'endpoints[0].url',
      /required/,
    ],
    [
      'endpoint bad host',
      aSpec({ endpoints: [{ url: 'ok.example.com' }, { url: 'not a host' }] }),
      'endpoints[1].url',
      /host name or URL/,
    ],
    [
      'endpoint ftp',
      aSpec({ endpoints: [{ url: 'ftp://x.example.com' }] }),
      'endpoints[0].url',
      /http/,
    ],
    ['hosts not strings', aSpec({ hosts: { internal: 5 } }), 'hosts.internal', /text/],
    [
      'volume without name',
      aSpec({ volumes: [{ mount: '/data' }] }),
      'volumes[0].name',
      /required/,
    ],
    [
      'volume relative mount',
      aSpec({ volumes: [{ name: 'd', mount: 'data' }] }),
      'volumes[0].mount',
      /absolute path/,
    ],
    [
      'volumes share a mount',
      aSpec({
        volumes: [
          { name: 'a', mount: '/d' },
          { name: 'b', mount: '/d' },
        ],
      }),
      'volumes[1].mount',
      /volumes\[0\]/,
    ],
    [
      'volume hostPath relative',
      aSpec({ volumes: [{ name: 'd', mount: '/d', hostPath: 'srv/d' }] }),
      'volumes[0].hostPath',
      /absolute path on the node/,
    ],
    [
      'volume hostPath with ..',
      aSpec({ volumes: [{ name: 'dd', mount: '/d', hostPath: '/srv/../etc' }] }),
      'volumes[0].hostPath',
      /must not contain "\.\."/,
    ],
    [
      'volume size without a unit Kubernetes knows',
      aSpec({ volumes: [{ name: 'dd', mount: '/d', size: '1GB' }] }),
      'volumes[0].size',
      /storage size as Kubernetes writes it: .*500Mi, 1Gi or 10G/,
    ],
    [
      'volume size as a number',
      aSpec({ volumes: [{ name: 'dd', mount: '/d', size: 5 }] }),
      'volumes[0].size',
      /text/,
    ],
    [
      'volume size zero',
      aSpec({ volumes: [{ name: 'dd', mount: '/d', size: '0Gi' }] }),
      'volumes[0].size',
      /more than zero/,
    ],
    [
      'volume size with hostPath',
      aSpec({ volumes: [{ name: 'dd', mount: '/d', hostPath: '/srv/d', size: '1Gi' }] }),
      'volumes[0].size',
      /a hostPath volume is a directory of the node and has no size/,
    ],
    [
      'one volume name for two kinds of data',
      aSpec({
        volumes: [
          { name: 'dd', mount: '/a' },
          { name: 'dd', mount: '/b', hostPath: '/srv/b' },
        ],
      }),
      'volumes[1]',
      /names volume dd again, as volumes\[0\] does, but with hostPath \/srv\/b instead of a claim of 1Gi/,
    ],
    ['snapshots keep zero', aSpec({ snapshots: { keep: 0 } }), 'snapshots.keep', /at least 1/],
    [
      'bad concurrency',
      aSpec({ deployPolicy: { concurrency: 'fast' } }),
      'deployPolicy.concurrency',
      /"queue", "supersede", "reject"/,
    ],
    [
      'bad minHealthyTime',
      aSpec({ deployPolicy: { minHealthyTime: '-5s' } }),
      'deployPolicy.minHealthyTime',
      /not a valid duration/,
    ],
    ['bad target', aSpec({ target: 'k8s' }), 'target', /"docker", "kubernetes", "nomad"/],
    ['volumes as mapping', aSpec({ volumes: {} }), 'volumes', /must be a list, not a mapping/],
  ];

  it.each(cases)('%s', (_label, input, path, message) => {
    const problems = problemsOf(input);
    expect(problems).toContainEqual({ path, message: expect.stringMatching(message) });
  });

  it('never repeats a token from the repo url in the message', () => {
    const problems = problemsOf(aSpec({ repo: { url: 'https://user:hunter2@github.com/a/b' } }));
    expect(JSON.stringify(problems)).not.toContain('hunter2');
  });

  it('reports __proto__ keys, which zod would drop from maps without a word', () => {
    expect(problemsOf('name: a\nprocesses: {web: {}}\nenv: {__proto__: "v", OK: "1"}\n')).toEqual([
      { path: 'env.__proto__', message: 'the key "__proto__" is not allowed' },
    ]);
    expect(problemsOf('name: a\nprocesses: {__proto__: {port: 1}, web: {}}\n')).toEqual([
      { path: 'processes.__proto__', message: 'the key "__proto__" is not allowed' },
    ]);
  });

  it('gives a volume without hostPath a claim of 1Gi, takes the sizes Kubernetes writes, and one volume mounted twice', () => {
    const volumes = [
      { name: 'Media.files', mount: '/media' },
      { name: 'Media.files', mount: '/srv/media', readOnly: true },
      { name: 'db', mount: '/db', size: '1.5Gi' },
      { name: 'tmp', mount: '/tmp', size: '200M' },
      { name: 'bytes', mount: '/b', size: '1048576' },
      { name: 'node', mount: '/n', hostPath: '/srv/node' },
      { name: 'node', mount: '/m', hostPath: '/srv/node' },
    ];
    const parsed = specOf(aSpec({ volumes }));
    expect(parsed.volumes).toEqual([
      { name: 'Media.files', mount: '/media', readOnly: false, size: '1Gi' },
      { name: 'Media.files', mount: '/srv/media', readOnly: true, size: '1Gi' },
      { name: 'db', mount: '/db', readOnly: false, size: '1.5Gi' },
      { name: 'tmp', mount: '/tmp', readOnly: false, size: '200M' },
      { name: 'bytes', mount: '/b', readOnly: false, size: '1048576' },
      { name: 'node', mount: '/n', readOnly: false, hostPath: '/srv/node' },
      { name: 'node', mount: '/m', readOnly: false, hostPath: '/srv/node' },
    ]);
    // What is stored parses again to itself (the default size is not "given together" with it).
    expect(specOf(JSON.parse(JSON.stringify(parsed))).volumes).toEqual(parsed.volumes);
    expect(Object.keys(parsed.volumes![5]!)).not.toContain('size');
  });

  it('accepts a process with neither port, command nor schedule', () => {
    expect(specOf(aSpec({ processes: { worker: {} } })).processes.worker).toEqual({
      replicas: 1,
      resources: { cpu: 100, memory: 128 },
    });
  });
});

describe('parseInfraspec: problems come back together', () => {
  it('reports a bad name, an unknown top-level key and a bad port as three problems', () => {
    const problems = problemsOf('name: Bad Name\nprocesess: {}\nprocesses:\n  web:\n    port: 0\n');
    expect(problems).toHaveLength(3);
    expect(problems.map((p) => p.path).sort()).toEqual(['name', 'procesess', 'processes.web.port']);
  });

  it('reports problems in different processes and sections in one go', () => {
    const paths = problemsOf(
      aSpec({
        processes: { a: { port: -1 }, b: { replicas: 'x' } },
        env: { 'X-Y': '1' },
        target: 'bare-metal',
      }),
    ).map((p) => p.path);
    expect(paths).toEqual(
      expect.arrayContaining(['processes.a.port', 'processes.b.replicas', 'env.X-Y', 'target']),
    );
    expect(paths).toHaveLength(4);
  });
});

describe('parseInfraspec: unknown keys', () => {
  it.each([
    [aSpec({ procesess: {} }), 'procesess', /unknown key \(did you mean "processes"\?\)/],
    [aSpec({ processes: { web: { prot: 80 } } }), 'processes.web.prot', /did you mean "port"\?/],
    [
      aSpec({ repo: { url: 'https://h/x', autodeploy: true } }),
      'repo.autodeploy',
      /did you mean "autoDeploy"\?/,
    ],
    [
      aSpec({ endpoints: [{ url: 'a.example.com', regoin: 'eu' }] }),
      'endpoints[0].regoin',
      /did you mean "region"\?/,
    ],
    [
      aSpec({ deployPolicy: { minHealthTime: '1s' } }),
      'deployPolicy.minHealthTime',
      /did you mean "minHealthyTime"\?/,
    ],
    [
      aSpec({ processes: { web: { port: 80, health: { path: '/', intervall: '1s' } } } }),
      'processes.web.health.intervall',
      /did you mean "interval"\?/,
    ],
  ])('reports %#: %s with a suggestion', (input, path, message) => {
    expect(problemsOf(input)).toEqual([{ path, message: expect.stringMatching(message) }]);
  });

  it('lists the accepted keys when nothing is close', () => {
    expect(problemsOf(aSpec({ infrastructure: { kafka: {} } }))).toEqual([
      { path: 'infrastructure.kafka', message: 'unknown key; expected one of postgres' },
    ]);
  });

  it('reports every unknown key of one object separately', () => {
    const problems = problemsOf(aSpec({ processes: { web: { prot: 1, commnd: 'x' } } }));
    expect(problems.map((p) => p.path).sort()).toEqual([
      'processes.web.commnd',
      'processes.web.prot',
    ]);
  });
});

describe('parseInfraspec: YAML text', () => {
  it('reports a syntax error as one problem with its line and column', () => {
    expect(problemsOf('name: app\nprocesses:\n  web: {port: 80\n  worker: {}\n')).toEqual([
      { path: '', message: expect.stringMatching(/^YAML syntax error at line \d+, column \d+: /) },
    ]);
    expect(problemsOf('name: app\nprocesses:\n\tweb: {}\n')).toEqual([
      {
        path: '',
        message: 'YAML syntax error at line 3, column 1: Tabs are not allowed as indentation',
      },
    ]);
    expect(
      problemsOf('name: app\nprocesses:\n  web:\n    port: 80\n   bad: 1\n')[0]?.message,
    ).toMatch(/at line 5, column 1/);
  });

  it.each([
    ['- a\n- b\n', /is a list/],
    ['just text\n', /is text/],
    ['', /is empty/],
    ['# only a comment\n', /is empty/],
    [42, /is a whole number/],
    [null, /is empty/],
  ])('rejects a document that is not a mapping (%j)', (input, message) => {
    expect(problemsOf(input)).toEqual([{ path: '', message: expect.stringMatching(message) }]);
  });

  it('reports duplicate keys with their path and lines, along with other problems', () => {
    const problems = problemsOf(
      'name: app\nprocesses:\n  web: {port: 80}\n  web: {port: 0}\nname: app\n',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        {
          path: 'processes.web',
          message: 'duplicate key (line 4); it is already set on line 3, keep only one',
        },
        { path: 'name', message: expect.stringMatching(/duplicate key \(line 5\).*line 1/) },
        { path: 'processes.web.port', message: 'must be at least 1' },
      ]),
    );
    expect(problems).toHaveLength(3);
  });

  it('reports duplicate keys in JSON text too', () => {
    expect(problemsOf('{"name": "app", "name": "app", "processes": {"web": {}}}')).toEqual([
      { path: 'name', message: expect.stringMatching(/duplicate key/) },
    ]);
  });
});

describe('parseInfraspec: env coercion', () => {
  it('turns YAML numbers and booleans into strings exactly as written', () => {
    const spec = specOf(
      'name: app\nprocesses:\n  web:\n    env: {PORT: 8080, ON: true}\nenv:\n  VERSION: 1.10\n  MASK: 0x1F\n  BIG: 1e3\n  OFF: false\n  QUOTED: "007"\n',
    );
    expect(spec.env).toEqual({
      VERSION: '1.10',
      MASK: '0x1F',
      BIG: '1e3',
      OFF: 'false',
      QUOTED: '007',
    });
    expect(spec.processes.web?.env).toEqual({ PORT: '8080', ON: 'true' });
  });

  it('turns numbers and booleans of a parsed object into strings', () => {
    expect(specOf(aSpec({ env: { N: 3, F: 1.5, B: false } })).env).toEqual({
      N: '3',
      F: '1.5',
      B: 'false',
    });
  });
});

describe('durations', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['2m30s500ms', 150_500],
    ['30', 30_000],
    ['0.25', 250],
    [30, 30_000],
    [0, 0],
    ['0s', 0],
  ])('parses %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
    expect(durationMs(text)).toBe(ms);
  });

  it('gives the deploy whole milliseconds, rounded up, which timers and AbortSignal.timeout take', () => {
    expect(parseDuration('1500us')).toBe(1.5);
    expect(durationMs('1500us')).toBe(2);
    expect(durationMs('1ns')).toBe(1);
    const spec = specOf(
      aSpec({ processes: { web: { port: 80, health: { path: '/', timeout: '500us' } } } }),
    );
    const [replica] = slotsOf(spec);
    expect(replica?.probeTimeoutMs).toBe(1);
    expect(() => AbortSignal.timeout(replica!.probeTimeoutMs)).not.toThrow();
  });

  it.each([
    [''],
    ['  '],
    ['5'.concat('x')],
    ['-5s'],
    ['1d'],
    ['s'],
    ['10 s'],
    ['1h 30m'],
    ['ten seconds'],
    [-1],
    [Number.NaN],
    [Infinity],
  ])('rejects %s with SPEC_INVALID', (text) => {
    let thrown: unknown;
    try {
      parseDuration(text);
    } catch (err) {
      thrown = err;
    }
    expect(isNornError(thrown) && thrown.code).toBe('SPEC_INVALID');
    expect((thrown as Error).message).toMatch(/not a valid duration/);
  });

  it('keeps durations as written in the parsed spec, numbers as their string form', () => {
    const spec = specOf(
      aSpec({
        processes: { web: { port: 80, health: { path: '/', interval: 30, timeout: '1m' } } },
      }),
    );
    expect(spec.processes.web?.health).toEqual({ path: '/', interval: '30', timeout: '1m' });
    expect(durationMs(spec.processes.web!.health!.interval)).toBe(30_000);
    expect(durationMs(spec.deployPolicy.healthTimeout)).toBe(300_000);
  });
});

describe('issue 7: specs the deploy would refuse are refused at registration', () => {
  it.each(REPROS)('$label', ({ spec, path, message }) => {
    expect(problemsOf(spec)).toContainEqual({ path, message: expect.stringMatching(message) });
    expect(problemsOf(JSON.stringify(spec))).toContainEqual({
      path,
      message: expect.stringMatching(message),
    });
  });

  const more: Array<[string, unknown, string, RegExp]> = [
    ['process name ending in "-"', aSpec({ processes: { 'web-': {} } }), 'processes.web-', /end/],
    [
      'a duration number that is stored as another text',
      aSpec({ deployPolicy: { minHealthyTime: 1e-7 } }),
      'deployPolicy.minHealthyTime',
      /write this duration as text/,
    ],
    [
      'minHealthyTime "0s"',
      aSpec({ deployPolicy: { minHealthyTime: '0s' } }),
      'deployPolicy.minHealthyTime',
      /nobody watched/,
    ],
    [
      'health.interval past its bound',
      aSpec({ processes: { web: { port: 1, health: { path: '/', interval: '2h' } } } }),
      'processes.web.health.interval',
      /at most 1h/,
    ],
    [
      'a time zone on a process without a schedule',
      aSpec({ processes: { web: { port: 1, timezone: 'UTC' } } }),
      'processes.web.timezone',
      /only a scheduled process/,
    ],
    [
      'a health check on a process without a port',
      aSpec({ processes: { worker: { health: { path: '/' } } } }),
      'processes.worker.health',
      /has none/,
    ],
    [
      'a 3-field cron (cron-parser would fill in the rest)',
      aSchedule('* * *'),
      'processes.job.schedule',
      /5 fields.*it has 3/,
    ],
    [
      'W in the minute field',
      aSchedule('15W 1 * * *'),
      'processes.job.schedule',
      /refused by the scheduler/,
    ],
    [
      'a zone the scheduler cannot use',
      aSchedule('* * * * *', 'Mars/Base'),
      'processes.job.timezone',
      /IANA/,
    ],
    [
      'an endpoint with a query string',
      aSpec({ endpoints: [{ url: 'a.example.com/x?token=1' }] }),
      'endpoints[0].url',
      /query string/,
    ],
    [
      'an endpoint path that is not percent-encoding',
      aSpec({ endpoints: [{ url: 'a.example.com/%zz' }] }),
      'endpoints[0].url',
      /percent-encoding/,
    ],
    [
      'an endpoint label over 63 characters',
      aSpec({ endpoints: [{ url: `${'a'.repeat(64)}.example.com` }] }),
      'endpoints[0].url',
      /not a valid host name/,
    ],
    [
      'hosts.internal not a host',
      aSpec({ hosts: { internal: 'not a host' } }),
      'hosts.internal',
      /host name/,
    ],
    [
      'repoWeb not a web page',
      aSpec({ repo: { url: 'https://h.example.com/a', repoWeb: 'javascript:alert(1)' } }),
      'repo.repoWeb',
      /http/,
    ],
    [
      'a volume name Docker refuses',
      aSpec({ volumes: [{ name: 'a', mount: '/a' }] }),
      'volumes[0].name',
      /at least 2/,
    ],
    [
      'a volume on /',
      aSpec({ volumes: [{ name: 'aa', mount: '/' }] }),
      'volumes[0].mount',
      /below "\/"/,
    ],
    [
      'a volume mount with ":"',
      aSpec({ volumes: [{ name: 'aa', mount: '/a:ro' }] }),
      'volumes[0].mount',
      /":"/,
    ],
    [
      'two volumes on one mount, one with a trailing "/"',
      aSpec({
        volumes: [
          { name: 'aa', mount: '/d' },
          { name: 'bb', mount: '/d/' },
        ],
      }),
      'volumes[1].mount',
      /volumes\[0\]/,
    ],
    [
      'cpu past its bound',
      aSpec({ processes: { web: { resources: { cpu: 1e308 } } } }),
      'processes.web.resources.cpu',
      /at most/,
    ],
    [
      'snapshots.keep past its bound',
      aSpec({ snapshots: { keep: 2 ** 40 } }),
      'snapshots.keep',
      /at most 1000/,
    ],
  ];
  it.each(more)('%s', (_label, input, path, message) => {
    expect(problemsOf(input)).toContainEqual({ path, message: expect.stringMatching(message) });
  });
});

describe('the schema checks values with the code the deploy runs on them', () => {
  /** What BullMQ's upsertJobScheduler computes as the first run: a time, or nothing, or a throw. */
  function schedulerNext(schedule: string, timezone?: string): number | undefined | 'refused' {
    try {
      return defaultRepeatStrategy(Date.now(), schedulerRepeat(schedule, timezone));
    } catch {
      return 'refused';
    }
  }

  it.each([
    ['*/5 * * * *'],
    ['0 0 29 2 *'],
    ['0 0 L 2 *'],
    ['0 3 * * MON-FRI', 'Europe/Paris'],
    ['0 0 12 ? * MON#2'],
    ['* * * * * *'],
  ])('accepts %s, which the scheduler schedules', (schedule, timezone?: string) => {
    expect(specOf(aSchedule(schedule, timezone)).processes.job?.schedule).toBe(schedule);
    expect(typeof schedulerNext(schedule, timezone)).toBe('number');
  });

  it.each([
    ['61 * * * *'],
    ['* * 31 2 *'],
    ['0 0 31 4,6 *'],
    ['*/0 * * * *'],
    ['0 0 * 13 *'],
    ['15W 1 * * *'],
  ])('refuses %s, which the scheduler refuses or never runs', (schedule) => {
    const next = schedulerNext(schedule);
    expect(next === 'refused' || next === undefined).toBe(true);
    expect(problemsOf(aSchedule(schedule)).map((p) => p.path)).toEqual(['processes.job.schedule']);
  });

  it('answers a never-firing schedule quickly (the search is bounded)', () => {
    const started = performance.now();
    problemsOf(aSchedule('0 0 31 4,6,9,11 *'));
    expect(performance.now() - started).toBeLessThan(1_500);
  });

  const throws = (fn: () => unknown) => {
    try {
      fn();
      return false;
    } catch {
      return true;
    }
  };

  it.each([
    ['Dockerfile'],
    ['./docker/Dockerfile.prod'],
    ['.'],
    ['docker/..'],
    ['docker/'],
    ['../x'],
    ['/etc/passwd'],
    ['a/../../x'],
  ])('build.dockerfile %s: the spec refuses it exactly when the build step would', (dockerfile) => {
    const specRefuses = !parseInfraspec(aSpec({ build: { dockerfile } })).ok;
    expect(specRefuses).toBe(throws(() => checkDockerfilePath(dockerfile)));
  });

  it.each([
    ['app.example.com'],
    ['https://api.example.com/v1'],
    ['*.example.com'],
    ['host.example.com:8443'],
    ['http://[::1]'],
    ['a.example.com/?x=1'],
    ['a.example.com/%zz'],
    ['ftp://a.example.com'],
  ])('endpoint %s: the spec refuses it exactly when the forge step would', (url) => {
    const specRefuses = !parseInfraspec(aSpec({ endpoints: [{ url }] })).ok;
    expect(specRefuses).toBe(throws(() => endpointToRoute(url, 'http://127.0.0.1:8080')));
  });

  it('takes one port per process, however many replicas (they sit behind the proxy)', () => {
    expect(parseInfraspec(aSpec({ processes: { web: { port: 65535, replicas: 100 } } })).ok).toBe(
      true,
    );
    // The port next to a process with replicas is free for another one.
    expect(
      parseInfraspec(
        aSpec({ processes: { web: { port: 3000, replicas: 3 }, api: { port: 3001 } } }),
      ).ok,
    ).toBe(true);
  });

  it('stores a spec that parses again to itself, as every deploy step parses it', () => {
    const edgy = aSpec({
      processes: {
        web: {
          port: 65436,
          replicas: 100,
          health: { path: '/h?x=1', interval: 0.5, timeout: '1ns' },
        },
        job: { schedule: '0 0 29 2 *', timezone: 'Pacific/Kiritimati', command: 'a\n\tb' },
      },
      env: { PEM: '-----BEGIN-----\nabc\n-----END-----', ESC: '\u001b[0m', N: 1e21 },
      deployPolicy: { minHealthyTime: 29.999, healthTimeout: 30 },
    });
    for (const input of [COMPLETE_YAML, edgy]) {
      const stored = JSON.parse(JSON.stringify(specOf(input))) as unknown;
      expect(specOf(stored)).toEqual(stored);
    }
  });
});
