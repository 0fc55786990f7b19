/**
 * Secrets stay secret: a real deploy of the example app on Docker with all three kinds of secret
 * norn handles (SOPS-encrypted app secrets decrypted with an age key, a git token for a private
 * repository, the password of a registry behind htpasswd), plus the api token, and then a search
 * of everything norn keeps or says for the plaintext (and its base64 and URL-encoded forms):
 * every api answer about the app, every step log, every row of every table of norn's database,
 * every key norn has in Redis (job data included), every /ws message, and the process log at
 * debug level. The sweep itself is checked first: a value planted in each source is found.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../src/shared/logger.js';
import { createRedis, type Redis } from '../../src/shared/redis.js';
import { DEPLOY_STEPS } from '../../src/pipelines/deploy/types.js';
import { withDatabase } from '../support/global-setup.js';
import {
  AUTH_USER,
  authRegistry,
  authRegistryPassword,
  REPO_ROOT,
} from '../support/docker/engine.js';
import {
  appContainers,
  freePorts,
  removeAppContainers,
} from '../support/deploy-runtime/fixtures.js';
import { startFleet, type Fleet } from '../support/deploy/fleet.js';
import { startGitHttpServer, type GitHttpServer } from '../support/git/http-server.js';
import { apiCaller, waitForRun } from '../support/norn.js';
import { sopsEncryptYaml } from '../support/secrets/sops-encrypt.js';
import { connectWs, type WsClient } from '../support/ws.js';

const TOKEN = `api-${randomBytes(16).toString('hex')}`;
const GIT_TOKEN = `ghp_${randomBytes(18).toString('hex')}`;
const APP_SECRETS = {
  API_KEY: `sk-sweep-${randomBytes(12).toString('hex')}`,
  SESSION_SECRET: `s3ss10n/${randomBytes(12).toString('base64url')}+=`,
};

let fleet: Fleet;
let git: GitHttpServer;
let redis: Redis;
let ws: WsClient;
let registryPassword: string;
let ageIdentity: string;
let app: string;
let runId: string;
const logLines: string[] = [];

/** Every form a leaked value could take: as is, URL-encoded, base64 (at any byte alignment). */
function needlesFor(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = new Set([secret, encodeURIComponent(secret)]);
  for (const pad of [0, 1, 2]) {
    // The characters of base64(pad bytes + secret) that only the secret's bytes determine.
    const b64 = Buffer.concat([Buffer.alloc(pad), bytes]).toString('base64');
    const start = Math.ceil((pad * 8) / 6);
    const end = Math.floor(((pad + bytes.length) * 8) / 6);
    const slice = b64.slice(start, end);
    if (slice.length >= 12) {
      forms.add(slice);
      forms.add(slice.replace(/\+/g, '-').replace(/\//g, '_')); // base64url
    }
  }
  return [...forms];
}

/** `source: secret-name` for every needle found in a haystack. */
function leaks(haystacks: Record<string, string>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  for (const [source, text] of Object.entries(haystacks))
    for (const [name, secret] of Object.entries(secrets))
      if (needlesFor(secret).some((n) => text.includes(n))) found.push(`${source}: ${name}`);
  return found;
}

async function redisDump(prefix: string): Promise<string> {
  const parts: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      const value =
        type === 'string'
          ? await redis.get(key)
          : type === 'hash'
            ? await redis.hgetall(key)
            : type === 'list'
              ? await redis.lrange(key, 0, -1)
              : type === 'set'
                ? await redis.smembers(key)
                : type === 'zset'
                  ? await redis.zrange(key, '0', '-1')
                  : type === 'stream'
                    ? await redis.xrange(key, '-', '+')
                    : null;
      parts.push(`${key} ${type} ${JSON.stringify(value)}`);
    }
  } while (cursor !== '0');
  return parts.join('\n');
}

async function databaseDump(): Promise<string> {
  const db = fleet.system.db;
  const { rows: tables } = await db.query<{ table_name: string }>(
    `SELECT table_name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
  );
  const parts: string[] = [];
  for (const { table_name } of tables) {
    const { rows } = await db.query<{ row: string }>(
      `SELECT to_jsonb(t)::text AS row FROM "${table_name}" t`,
    );
    parts.push(`${table_name}: ${rows.map((r) => r.row).join('\n')}`);
  }
  expect(tables.map((t) => t.table_name)).toEqual(
    expect.arrayContaining(['events', 'runs', 'run_steps', 'releases', 'apps']),
  );
  return parts.join('\n');
}

/** Every GET the api answers about the app and its run, and the operator-wide listings. */
async function apiDump(): Promise<string> {
  const call = apiCaller(() => fleet.api, TOKEN);
  const paths = [
    '/api/apps',
    `/api/apps/${app}`,
    `/api/apps/${app}/lease`,
    `/api/apps/${app}/runs`,
    `/api/apps/${app}/deployments`,
    `/api/apps/${app}/releases`,
    `/api/apps/${app}/snapshots`,
    `/api/apps/${app}/drift`,
    `/api/apps/${app}/events?limit=500`,
    `/api/runs/${runId}`,
    `/api/runs/${runId}/events`,
    `/api/deployments/${runId}`,
    `/api/sagas/${runId}/events`,
    `/api/scopes/${encodeURIComponent(`app:${app}`)}`,
    '/api/alerts',
    '/api/webhooks/deliveries',
    '/api/session',
    ...DEPLOY_STEPS.map((s) => `/api/runs/${runId}/steps/${s}/log`),
  ];
  const parts: string[] = [];
  for (const path of paths) {
    const { status, body } = await call('GET', path);
    expect(status, path).toBe(200);
    parts.push(`${path} ${JSON.stringify(body)}`);
  }
  const metrics = await fetch(`${fleet.api.url}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  parts.push(await metrics.text());
  return parts.join('\n');
}

beforeAll(async () => {
  registryPassword = await authRegistryPassword();
  ageIdentity = await generateIdentity();
  const work = mkdtempSync(join(tmpdir(), 'norn-sweep-'));
  // The example app in a private repository, with its secrets encrypted to our age key.
  const src = join(work, 'hello-src');
  execFileSync('bash', [join(REPO_ROOT, 'script/example-repo'), src]);
  writeFileSync(
    join(src, 'secrets.enc.yaml'),
    await sopsEncryptYaml(APP_SECRETS, await identityToRecipient(ageIdentity)),
  );
  const gitc = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=norn', '-c', 'user.email=norn@localhost', ...args], {
      cwd: src,
    });
  gitc('add', 'secrets.enc.yaml');
  gitc('commit', '-qm', 'secrets');
  execFileSync('git', ['clone', '-q', '--bare', src, join(work, 'hello.git')]);
  git = await startGitHttpServer({ root: work, token: GIT_TOKEN });

  const log = createLogger('debug', 'norn', 'json', { write: (line) => logLines.push(line) });
  fleet = await startFleet({
    token: TOKEN,
    name: 'sweep',
    log,
    env: (dir) => ({
      NORN_GIT_TOKEN: GIT_TOKEN,
      NORN_GIT_TOKEN_HOSTS: `127.0.0.1:${git.port}`,
      NORN_REGISTRY_URL: authRegistry(),
      NORN_REGISTRY_USERNAME: AUTH_USER,
      NORN_REGISTRY_PASSWORD: registryPassword,
      NORN_SNAPSHOT_DIR: join(dir, 'snapshots'),
      NORN_APP_DATABASE_URL: withDatabase(inject('databaseUrl'), 'postgres'),
      NORN_CLOUDFLARED_CONFIG: join(dir, 'cloudflared.yml'),
      NORN_CLOUDFLARED_RESTART: JSON.stringify(['true']),
      NORN_HEALTH_POLL_MS: '200',
      LOG_LEVEL: 'debug',
    }),
    stepEnv: { SOPS_AGE_KEY: ageIdentity },
  });
  redis = createRedis(inject('redisUrl'), 'client', log);

  const port = await freePorts(2);
  app = `sweep-${port}`;
  const spec = parseYaml(readFileSync(join(REPO_ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  spec.name = app;
  spec.repo.url = `${git.url}/hello.git`;
  spec.processes.web.port = port;
  spec.infrastructure.postgres.database = app.replace(/-/g, '_');
  spec.endpoints = [{ url: `${app}.example.test` }];
  spec.deployPolicy.minHealthyTime = '1s';
  spec.secrets = Object.keys(APP_SECRETS);
  const call = apiCaller(() => fleet.api, TOKEN);
  expect((await call('POST', '/api/apps', spec)).status).toBe(201);
  ws = await connectWs(fleet.api.url, { app }, { token: TOKEN });
  const accepted = (await call('POST', `/api/apps/${app}/deploy`, { ref: 'main' })).body;
  runId = accepted.runId;
  const run = await waitForRun(fleet.system, runId, undefined, 180_000);
  expect([run.status, run.error]).toEqual(['succeeded', null]);
  await ws.waitForType('deploy.completed');
}, 300_000);

afterAll(async () => {
  ws?.close();
  await removeAppContainers(app ? [app] : []);
  await fleet?.system.db
    .query(`DROP DATABASE IF EXISTS ${app.replace(/-/g, '_')} WITH (FORCE)`)
    .catch(() => {});
  await redis?.quit();
  await fleet?.close();
  await git?.close();
});

const secrets = () => ({
  ...APP_SECRETS,
  NORN_GIT_TOKEN: GIT_TOKEN,
  NORN_REGISTRY_PASSWORD: registryPassword,
  // The registry's basic-auth credential as a client sends it.
  REGISTRY_BASIC: `${AUTH_USER}:${registryPassword}`,
  SOPS_AGE_KEY: ageIdentity,
  NORN_API_TOKEN: TOKEN,
});

describe('secrets stay secret', () => {
  it('the deploy used every secret: token-authenticated clone, authenticated push, decrypted env', async () => {
    expect(git.authHeaders.length).toBeGreaterThan(0);
    const release = (await apiCaller(() => fleet.api, TOKEN)('GET', `/api/apps/${app}/releases`))
      .body.releases[0];
    expect(release.imageRef.startsWith(`${authRegistry()}/`)).toBe(true);
    const containers = await appContainers(app);
    expect(containers.length).toBeGreaterThan(0);
    for (const c of containers.filter((c) => c.running))
      expect(c.env).toEqual(
        expect.arrayContaining([
          `API_KEY=${APP_SECRETS.API_KEY}`,
          `SESSION_SECRET=${APP_SECRETS.SESSION_SECRET}`,
        ]),
      );
  });

  it('the sweep finds a value planted in any source, in any of its forms', async () => {
    const planted = { PLANTED: `planted-${randomBytes(10).toString('hex')}` };
    const key = `${fleet.system.config.queuePrefix}:sweep-plant`;
    await redis.hset(key, 'data', JSON.stringify({ x: planted.PLANTED }));
    await fleet.system.db.query(
      `INSERT INTO alert_deliveries (kind, subject, url_host, status, attempts, payload)
       VALUES ('sweep', 'plant', 'h', 'ok', 1, $1)`,
      [{ note: planted.PLANTED }],
    );
    fleet.system.log.info({ note: planted.PLANTED }, 'planted');
    try {
      expect(leaks({ redis: await redisDump(fleet.system.config.queuePrefix) }, planted)).toEqual([
        'redis: PLANTED',
      ]);
      expect(leaks({ db: await databaseDump() }, planted)).toEqual(['db: PLANTED']);
      expect(leaks({ api: await apiDump() }, planted)).toEqual(['api: PLANTED']); // /api/alerts
      expect(leaks({ log: logLines.join('') }, planted)).toEqual(['log: PLANTED']);
      const b64 = `xx${Buffer.from(`a${planted.PLANTED}`).toString('base64')}yy`;
      expect(leaks({ b64, url: encodeURIComponent(`?k=${planted.PLANTED}`) }, planted)).toEqual([
        'b64: PLANTED',
        'url: PLANTED',
      ]);
    } finally {
      await redis.del(key);
      await fleet.system.db.query("DELETE FROM alert_deliveries WHERE kind = 'sweep'");
    }
  });

  it('no api answer, step log, table row, Redis key, /ws message or log line holds a secret', async () => {
    const haystacks = {
      api: await apiDump(),
      database: await databaseDump(),
      redis: await redisDump(fleet.system.config.queuePrefix),
      ws: JSON.stringify([...ws.events, ...ws.control]),
      log: logLines.filter((l) => !l.includes('"msg":"planted"')).join(''),
    };
    // Each source was really read: it holds the run (or, for Redis, its jobs).
    for (const [source, text] of Object.entries(haystacks)) {
      expect(text.length, source).toBeGreaterThan(1000);
      expect(text, source).toContain(runId);
    }
    expect(haystacks.log).toContain('"level":20'); // debug lines were captured too
    expect(leaks(haystacks, secrets())).toEqual([]);
  });
});
