/**
 * `npm run bench:ws`: the /ws relay's fan-out. 1,000 clients (BENCH_WS_CLIENTS) follow 100 apps
 * (BENCH_WS_APPS), 10 each, while one 9-step run per app goes through a worker process; every
 * event of every run reaches every follower of its app. Two workloads: runs of no-op steps as
 * fast as the engine goes (16 at a time: the 2-core machine is saturated by the worker,
 * PostgreSQL and Redis, and what is measured is mostly waiting for a core), and all 100 runs at
 * once at a deploy's pace, each step taking BENCH_WS_STEP_MS (100 ms), as real steps wait on
 * builds and health checks. Measured per event
 * and client: publish-to-receive (from the moment a bare Redis subscriber in a process of its own hears
 * the publish, to the event's arrival in the clients' process), and
 * the api's memory per connected client. BENCH_WS_PAUSED clients (default 50) subscribe and then
 * stop reading, as a stalled laptop would.
 *
 * The baseline, measured in the same run with the same clients, workload and Redis channel, is
 * the least a relay can do: a bare `ws` server that sends each published event to the app's
 * sockets (no authentication, cursors, gap repair or PostgreSQL). Target: norn's p99 ≤ 20 ms on
 * loopback, every event delivered once to every reading client.
 *
 * Env: REDIS_URL, DATABASE_URL (a bench database is created next to it).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { loadConfig } from '../src/shared/config.js';
import { channels, parseEvents } from '../src/shared/events.js';
import { silentLogger } from '../src/shared/logger.js';
import { createRedis } from '../src/shared/redis.js';
import { NornSystem } from '../src/system.js';
import { bench, paced, pipelines } from './pipelines.js';
import { summarize } from './report.js';
import { checkPostgres, checkRedis, createBenchDatabase, removeKeys } from './services.js';
import { nodeArgv, ROOT, WorkerPool } from './workers.js';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
const APPS = Number(process.env.BENCH_WS_APPS || 100);
const CLIENTS = Number(process.env.BENCH_WS_CLIENTS || 1000);
const PAUSED = Number(process.env.BENCH_WS_PAUSED || 50);
const PER_APP = Math.max(1, Math.round(CLIENTS / APPS));
/** Client processes the apps are split over, so that reading 1,000 sockets is not the bottleneck. */
const CLIENT_PROCS = Number(process.env.BENCH_WS_CLIENT_PROCS || 2);
const TOKEN = randomBytes(24).toString('base64url');
const RUN_TIMEOUT_MS = 120_000;
const STEP_MS = Number(process.env.BENCH_WS_STEP_MS || 100);
/** Measured phases per relay and workload, taken in turns (bare, norn, bare, norn, ...). */
const REPEATS = Number(process.env.BENCH_WS_REPEATS || 2);

interface Workload {
  name: string;
  pipeline: string;
  params: Record<string, unknown>;
  concurrency: number;
  /** Requests spread evenly over this many ms (none: all at once). */
  spreadMs?: number;
}
const RUN_COMPLETED = new Set([`${bench.name}.completed`, `${paced.name}.completed`]);
const WORKLOADS: Workload[] = [
  { name: 'no-op steps, 16 runs at a time', pipeline: bench.name, params: {}, concurrency: 16 },
  {
    name: `steps of ${STEP_MS} ms, all runs at once`,
    pipeline: paced.name,
    params: { stepMs: STEP_MS },
    concurrency: APPS,
    spreadMs: 1_000,
  },
];

interface Collected {
  arrivals: Array<[number, number]>;
  received: Record<string, number[]>;
}

/** The clients' process (or the clock's): connects, then answers `collect`. */
class Clients {
  private readonly child: ChildProcess;
  constructor() {
    this.child = fork(`${ROOT}/bench/ws-clients.ts`, [], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
  }
  private ask<T>(msg: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.child.once('message', (m: T & { error?: string }) =>
        m.error ? reject(new Error(`ws clients: ${m.error}`)) : resolve(m),
      );
      this.child.send(msg);
    });
  }
  static async connect(url: string, apps: string[], paused: number): Promise<Clients> {
    const c = new Clients();
    await c.ask({ cmd: 'connect', url, token: TOKEN, apps, perApp: PER_APP, paused });
    return c;
  }
  static async clock(prefix: string): Promise<Clients> {
    const c = new Clients();
    await c.ask({ cmd: 'clock', redisUrl: REDIS_URL, prefix });
    return c;
  }
  collect = () => this.ask<Collected>({ cmd: 'collect' });
  close() {
    this.child.send({ cmd: 'close' });
  }
}

/** The baseline: each published event straight to the sockets of its app. */
function bareRelay(prefix: string) {
  const followers = new Map<string, Set<WebSocket>>();
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws, req) => {
    const app = new URLSearchParams((req.url ?? '').split('?')[1] ?? '').get('app') ?? '';
    let set = followers.get(app);
    if (!set) followers.set(app, (set = new Set()));
    set.add(ws);
    ws.on('close', () => set.delete(ws));
    ws.send(JSON.stringify({ type: 'ws.subscribed', appId: app }));
  });
  const sub = createRedis(REDIS_URL, 'subscriber', silentLogger);
  sub.on('message', (_ch: string, text: string) => {
    for (const e of parseEvents(text))
      for (const ws of followers.get(e.appId) ?? []) ws.send(JSON.stringify(e));
  });
  return {
    async start() {
      await sub.subscribe(channels(prefix).events);
      await new Promise<void>((r) => (wss.address() ? r() : wss.once('listening', () => r())));
      return `http://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    },
    async close() {
      for (const c of wss.clients) c.terminate();
      wss.close();
      await sub.quit();
    },
  };
}

const memory = () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed + m.external };
};

async function main() {
  await checkRedis(REDIS_URL);
  await checkPostgres(DATABASE_URL);
  const prefix = `wsb${randomBytes(4).toString('hex')}`;
  const bdb = await createBenchDatabase(
    DATABASE_URL,
    `norn_bench_${randomBytes(5).toString('hex')}`,
  );
  const env = {
    REDIS_URL,
    DATABASE_URL: bdb.url,
    NORN_QUEUE_PREFIX: prefix,
    NORN_PIPELINES_MODULE: 'bench/pipelines.ts',
    NORN_DEPLOY_PIPELINE: bench.name,
    NORN_MIGRATE_ON_START: 'false',
    NORN_API_TOKEN: TOKEN,
    LOG_LEVEL: 'silent',
  };
  const system = new NornSystem(loadConfig(env), {
    pipelines,
    services: {},
    log: silentLogger,
  });
  const completions = createRedis(REDIS_URL, 'subscriber', silentLogger);
  const done = new Set<string>();
  completions.on('message', (_ch: string, text: string) => {
    for (const e of parseEvents(text)) if (RUN_COMPLETED.has(e.type)) done.add(e.sagaId);
  });
  await completions.subscribe(channels(prefix).events);
  const apps = Array.from({ length: APPS }, (_, i) => `ws-${String(i).padStart(3, '0')}`);
  for (const id of apps) {
    const spec = { name: id, processes: { web: { port: 8080 } } };
    await system.apps.upsert(id, spec, JSON.stringify(spec), 'json');
  }
  const api = await system.startApi(0);

  /** Connects the clients to `url`, runs one run of `w` per app, and collects what arrived. */
  const phase = async (url: string, w: Workload) => {
    const before = memory();
    const clock = await Clients.clock(prefix);
    const clients = await Promise.all(
      Array.from({ length: CLIENT_PROCS }, (_, p) =>
        Clients.connect(
          url,
          apps.filter((_, i) => i % CLIENT_PROCS === p),
          Math.floor(PAUSED / CLIENT_PROCS) + (p < PAUSED % CLIENT_PROCS ? 1 : 0),
        ),
      ),
    );
    const after = memory();
    done.clear();
    const sagas = await Promise.all(
      apps.map(async (appId, i) => {
        if (w.spreadMs) await new Promise((r) => setTimeout(r, (w.spreadMs! * i) / apps.length));
        return (await system.runs.request({ appId, pipeline: w.pipeline, params: w.params }))
          .sagaId;
      }),
    );
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    while (sagas.some((s) => !done.has(s))) {
      if (Date.now() > deadline) throw new Error('runs did not complete in time');
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 500)); // the last sends reach the clients
    const parts = await Promise.all(clients.map((c) => c.collect()));
    const got = {
      arrivals: parts.flatMap((p) => p.arrivals),
      received: Object.assign({}, ...parts.map((p) => p.received)) as Collected['received'],
    };
    const publishedAt = new Map((await clock.collect()).arrivals);
    for (const c of clients) c.close();
    clock.close();
    const latencies = got.arrivals.map(([id, at]) => at - publishedAt.get(id)!);
    // Every reading client must have every event of its app's run, once.
    const expected = new Map<string, number>();
    for (const [i, appId] of apps.entries())
      expected.set(appId, (await system.events.bySaga(sagas[i]!)).length);
    let short = 0;
    for (const [appId, counts] of Object.entries(got.received))
      for (const n of counts) if (n !== expected.get(appId)) short++;
    const events = [...expected.values()].reduce((a, b) => a + b, 0);
    return {
      latencies,
      deliveries: latencies.length,
      events,
      short,
      perClientBytes: (after.heap - before.heap) / (CLIENTS + PAUSED),
    };
  };

  type Phase = Awaited<ReturnType<typeof phase>>;
  const merge = (phases: Phase[]) => ({
    ...summarize(phases.flatMap((p) => p.latencies)),
    events: phases.reduce((n, p) => n + p.events, 0),
    deliveries: phases.reduce((n, p) => n + p.deliveries, 0),
    short: phases.reduce((n, p) => n + p.short, 0),
    perClientBytes: Math.max(...phases.map((p) => p.perClientBytes)),
  });
  const pools: WorkerPool[] = [];
  try {
    const bare = bareRelay(prefix);
    const bareUrl = await bare.start();
    const results = [];
    for (const w of WORKLOADS) {
      const pool = new WorkerPool('engine');
      pools.push(pool);
      await pool.start(
        1,
        nodeArgv('src/main.ts', 'worker'),
        { ...env, NORN_WORKER_CONCURRENCY: String(w.concurrency), LOG_LEVEL: 'warn' },
        system.runs.queue('steps'),
      );
      await phase(api.url, w); // warm-up: connections, JIT, the new worker, pools
      // Taken in turns, so that neither relay gets the warmer (or the colder) machine.
      const droppedBefore = api.relay.slowClientsDropped;
      const norns: Phase[] = [];
      const bases: Phase[] = [];
      for (let rep = 0; rep < REPEATS; rep++) {
        bases.push(await phase(bareUrl, w));
        norns.push(await phase(api.url, w));
      }
      const dropped = api.relay.slowClientsDropped - droppedBefore;
      await pool.stop();
      results.push({ w, norn: merge(norns), base: merge(bases), dropped });
    }
    await bare.close();
    const kb = (b: number) => (b / 1024).toFixed(1);
    console.log(
      `${CLIENTS} clients over ${APPS} apps (${PER_APP} each, in ${CLIENT_PROCS} processes) + ${PAUSED} paused, one 9-step run per app, 1 worker process, ${REPEATS} phases per relay and workload taken in turns\n`,
    );
    console.log(
      '| workload | relay | events | deliveries | missing or extra | p50 ms | p99 ms | api heap+external KiB/client |',
    );
    console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const { w, norn, base } of results)
      for (const [name, r] of [
        ['bare ws broadcast (baseline)', base],
        ['norn /ws relay', norn],
      ] as const)
        console.log(
          `| ${w.name} | ${name} | ${r.events} | ${r.deliveries} | ${r.short} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${kb(r.perClientBytes)} |`,
        );
    console.log('');
    for (const { w, norn, base, dropped } of results) {
      console.log(
        `${w.name}: norn / baseline p50 ${(norn.p50 / base.p50).toFixed(2)}x, p99 ${(norn.p99 / base.p99).toFixed(2)}x; ` +
          `target p99 <= 20 ms: ${norn.p99 <= 20 ? 'met' : 'MISSED'}; every reading client got every event once: ${norn.short === 0 ? 'yes' : 'NO'}; ` +
          `paused clients dropped by the send bound: ${dropped}`,
      );
    }
  } finally {
    for (const pool of pools) await pool.stop();
    await system.close(); // the api too
    await completions.quit();
    const r = createRedis(REDIS_URL, 'client', silentLogger);
    await removeKeys(r, prefix);
    await r.quit();
    await bdb.drop();
  }
}

await main();
