/**
 * Zero-downtime deploys on a Docker host, measured: the example app (examples/hello, 2 replicas)
 * is redeployed through the real docker target (real dockerd, real Caddy as the ingress proxy)
 * while a steady, bounded stream of GET requests goes through the proxy on loopback; then the same
 * stream runs as long again with no deploy (the baseline, measured in the same run). Prints failed
 * requests and p50/p99 latency of both, and the ratio against the baseline.
 *
 *   npm run bench:zero-downtime [-- --rounds 3 --concurrency 4 --interval-ms 5]
 *
 * Needs what script/docker-up starts (dockerd, the registry on 127.0.0.1:5000, Caddy). The drain
 * is NORN_DRAIN_MS's default unless NORN_DRAIN_MS is set. Exits 1 when a request failed.
 */
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createCaddyDriver } from '../src/shared/drivers/caddy.js';
import { createDockerDriver, portIsFree } from '../src/shared/drivers/docker.js';
import { parseInfraspec } from '../src/shared/spec/infraspec.js';
import { DEFAULT_DRAIN_MS, createDockerTarget } from '../src/targets/docker.js';
import type { TargetCall, TargetRelease } from '../src/targets/index.js';
import { summarize } from './report.js';
import { ratio } from './verdicts.js';
import { requestStream, type StreamResult } from './request-stream.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    'interval-ms': { type: 'string', default: '5' },
  },
});
const rounds = Number(args.rounds);
const concurrency = Number(args.concurrency);
const intervalMs = Number(args['interval-ms']);
const drainMs = Number(process.env.NORN_DRAIN_MS ?? DEFAULT_DRAIN_MS);

const docker = createDockerDriver({ registryUrl: '127.0.0.1:5000' });
const proxy = createCaddyDriver({ adminUrl: process.env.NORN_CADDY_ADMIN_URL });
const noCron = { upsert: async () => '', prune: async () => [], list: async () => [] };
const target = createDockerTarget({ docker, cron: noCron, pollMs: 100, proxy, drainMs });
const call = (): TargetCall => ({
  signal: AbortSignal.timeout(300_000),
  log: () => {},
  redact: [],
});
const sha = () =>
  [...crypto.getRandomValues(new Uint8Array(20))]
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('');

/** The example app's image, built as script/server builds it (busybox next to its Dockerfile). */
async function buildExample(app: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'norn-zdt-bench-'));
  try {
    await cp(path.join(ROOT, 'examples/hello'), dir, { recursive: true });
    await cp('/bin/busybox', path.join(dir, 'busybox'));
    const tag = docker.imageRef(app, sha());
    await docker.build({
      contextDir: dir,
      dockerfile: 'Dockerfile',
      tag,
      labels: { 'norn.bench': '1' },
    });
    await docker.push({ tag });
    return tag;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The example's spec without its database, on its port (or a free one when that is taken). */
async function exampleSpec(app: string) {
  const raw = parseYaml(await readFile(path.join(ROOT, 'examples/hello/infraspec.yaml'), 'utf8'));
  delete raw.infrastructure;
  delete raw.migrations;
  let port = raw.processes.web.port as number;
  while (!(await portIsFree(port))) port = 20_000 + Math.floor(Math.random() * 10_000);
  raw.name = app;
  raw.processes.web.port = port;
  const parsed = parseInfraspec(raw);
  if (!parsed.ok) throw new Error(`example spec invalid: ${JSON.stringify(parsed.problems)}`);
  return parsed.spec;
}

interface Phase {
  name: string;
  runs: StreamResult[];
  ms: number;
}

function row(p: Phase, base?: { p50: number; p99: number }) {
  const all = p.runs.flatMap((r) => r.latencies);
  const { p50, p99 } = summarize(all);
  const sum = (k: 'sent' | 'failed' | 'retried') => p.runs.reduce((n, r) => n + r[k], 0);
  const vs = base
    ? ` | ${ratio(p50 / base.p50)} | ${ratio(p99 / base.p99)}`
    : ` | ${ratio(1)} | ${ratio(1)}`;
  return {
    line: `| ${p.name} | ${sum('sent')} | ${sum('failed')} | ${sum('retried')} | ${p50.toFixed(2)} | ${p99.toFixed(2)}${vs} |`,
    p50,
    p99,
    failed: sum('failed'),
  };
}

async function main() {
  const app = `zdt-bench-${sha().slice(0, 6)}`;
  const spec = await exampleSpec(app);
  const port = spec.processes.web!.port!;
  const image = await buildExample(app);
  let id = 9_000_000 + Math.floor(Math.random() * 1_000_000);
  const release = (): TargetRelease => ({
    app,
    id: ++id,
    deploymentId: `bench${id}`,
    imageRef: image,
    spec,
    secrets: {},
  });
  const stream = (stop: Promise<unknown>) =>
    requestStream(
      { port, concurrency, intervalMs, accept: (b) => b.includes('hello from norn') },
      stop,
    );
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  try {
    await target.apply(release(), call());
    const deploy: Phase = { name: 'during redeploy', runs: [], ms: 0 };
    const quiet: Phase = { name: 'no deploy (baseline)', runs: [], ms: 0 };
    for (let round = 1; round <= rounds; round++) {
      const started = performance.now();
      const applied = target.apply(release(), call());
      deploy.runs.push(await stream(applied));
      await applied;
      const ms = performance.now() - started;
      deploy.ms += ms;
      await sleep(500);
      const t = performance.now();
      quiet.runs.push(await stream(sleep(ms)));
      quiet.ms += performance.now() - t;
      console.error(`round ${round}/${rounds}: redeploy took ${(ms / 1000).toFixed(1)} s`);
    }
    const base = row(quiet);
    const during = row(deploy, base);
    console.log(
      `\nzero-downtime: example app (2 replicas) on port ${port} behind Caddy, ${rounds} redeploys, drain ${drainMs} ms`,
    );
    console.log(
      `stream: ${concurrency} keep-alive clients, next request ${intervalMs} ms after each answer, loopback\n`,
    );
    console.log(
      '| phase | requests | failed | retried on a new connection | p50 ms | p99 ms | p50 vs baseline | p99 vs baseline |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    console.log(base.line);
    console.log(during.line);
    const failures = deploy.runs.flatMap((r) => r.failures).slice(0, 5);
    if (failures.length) console.log(`\nfirst failures: ${failures.join('; ')}`);
    process.exitCode = during.failed + base.failed > 0 ? 1 : 0;
  } finally {
    await target.remove(app, call()).catch(() => undefined);
    await docker.removeImage(image).catch(() => undefined);
  }
}

await main();
