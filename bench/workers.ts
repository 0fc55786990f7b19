/**
 * Worker processes for one configuration: started with runCommand (own process group, killed as a
 * group on abort), ready once BullMQ lists them as workers of the queue (or, for the PostgreSQL
 * peers, once each has printed READY_LINE), and watched: a worker that dies mid-measurement fails
 * the bench instead of leaving it waiting.
 */
import { fileURLToPath } from 'node:url';
import type { Queue } from 'bullmq';
import { NornError } from '../src/shared/errors.js';
import { runCommand } from '../src/shared/exec.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What a peer's worker process prints on stdout once it takes jobs. */
export const READY_LINE = 'norn-bench: worker ready';

/**
 * `node --import tsx --import bench/parent-watch.ts <script> <args>`: one process per worker.
 * BENCH_CPU_PROF=<dir> (diagnostic) makes every worker write a V8 CPU profile there when it exits.
 */
export const nodeArgv = (script: string, ...args: string[]) => {
  const prof = process.env.BENCH_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
    : [];
  return [
    process.execPath,
    ...prof,
    '--import',
    'tsx',
    '--import',
    './bench/parent-watch.ts',
    script,
    ...args,
  ];
};

interface Running {
  controller: AbortController;
  done: Promise<unknown>;
}

/** Every pool the bench started, so an interrupt can stop them all. */
const pools = new Set<WorkerPool>();

export async function stopAllPools(): Promise<void> {
  await Promise.all([...pools].map((p) => p.stop()));
}

export class WorkerPool {
  private readonly running: Running[] = [];
  private stopping = false;
  private failCrash!: (err: Error) => void;
  private readyLines = 0;
  /** Rejects when a worker exits on its own; race waits against it. */
  readonly crashed: Promise<never> = new Promise<never>((_, reject) => {
    this.failCrash = reject;
  });

  constructor(private readonly label: string) {
    this.crashed.catch(() => {}); // observed through races; never an unhandled rejection
    pools.add(this);
  }

  /**
   * Starts `count` processes and resolves once `ready` (a BullMQ queue) lists that many workers,
   * or, with `ready` = 'line', once that many have printed READY_LINE.
   */
  async start(
    count: number,
    argv: string[],
    env: Record<string, string>,
    ready: Queue | 'line',
    timeoutMs = 30_000,
  ): Promise<void> {
    for (let i = 0; i < count; i++) this.spawn(i + 1, argv, env);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = ready === 'line' ? this.readyLines : await ready.getWorkersCount();
      if (n >= count) return;
      if (Date.now() > deadline) {
        throw new NornError(
          'TIMEOUT',
          `${this.label}: ${count} worker process(es) not ready within ${timeoutMs} ms`,
        );
      }
      await Promise.race([this.crashed, new Promise((r) => setTimeout(r, 100))]);
    }
  }

  private spawn(n: number, argv: string[], env: Record<string, string>) {
    const controller = new AbortController();
    const name = `${this.label} worker ${n}`;
    const done = runCommand(argv, {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      signal: controller.signal,
      killGraceMs: 5_000,
      // LOG_LEVEL=warn: anything a worker prints is worth seeing.
      onLine: (line) => {
        if (line.trim() === READY_LINE) this.readyLines++;
        else if (line.trim()) console.error(`[${name}] ${line}`);
      },
    }).then(
      (result) => {
        if (!this.stopping) {
          this.failCrash(
            new NornError(
              'INTERNAL',
              `${name} exited with ${result.code ?? result.signal}:\n${result.tail.join('\n')}`,
            ),
          );
        }
      },
      (err: unknown) => {
        if (!this.stopping) this.failCrash(err as Error);
      },
    );
    this.running.push({ controller, done });
  }

  /** SIGTERM to every worker's process group (SIGKILL after 5 s); waits until they are gone. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const r of this.running) r.controller.abort('bench finished with these workers');
    await Promise.all(this.running.map((r) => r.done));
    this.running.length = 0;
    pools.delete(this);
  }
}
