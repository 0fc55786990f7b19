/**
 * A running run's live state in Redis: where a step's start and finish are decided, one Lua call
 * each, next to BullMQ's own keys (no PostgreSQL round trip on a step's critical path).
 *
 * Per run, `<prefix>:norn:run:<id>` is a hash: `status` (running | cancelling | ended), `t` (the
 * number of the run's last transition), `params`, `spec`, `saga`, and per step `s:<step>` (its
 * state), `a:<step>` (attempts) and `o:<step>` (output JSON). Every transition is also appended to
 * `<prefix>:norn:run:<id>:log`, the run's live log, until PostgreSQL has recorded it (Recorder,
 * norn_record): the log is the hand-off, so a worker killed between a transition and its recording
 * loses nothing (the next transition, or the end of the run, records it).
 *
 * PostgreSQL stays the authority for the run itself: RunService opens the live state when
 * PostgreSQL admits a run and marks it cancelling or ended after PostgreSQL decided so. A step whose
 * run is not live (ended, or never opened) does not start and cannot finish.
 */
import type { Redis } from 'ioredis';
import { systemClock, type Clock } from '../shared/clock.js';
import type { LiveSeed, LogEntry, RunRef } from '../shared/store/runs.js';

export type StartResult =
  | {
      action: 'run';
      attempt: number;
      params: Record<string, unknown>;
      spec: Record<string, unknown>;
      sagaId: string;
      log: LogEntry[];
    }
  | {
      action: 'skip';
      params: Record<string, unknown>;
      spec: Record<string, unknown>;
      sagaId: string;
    }
  /** The step finished already (a re-delivered job). */
  | { action: 'done' }
  /** The run is being cancelled: the step must not start. */
  | { action: 'cancel' }
  /** The run has ended. */
  | { action: 'finished' }
  /** The run has no live state (never opened here, or Redis lost it). */
  | { action: 'missing' }
  /** The step before it has not finished here yet. */
  | { action: 'early' };
export type StartAction = StartResult['action'];

export type FinishResult =
  | { action: 'ok'; log: LogEntry[] }
  /** Finished already: this finish is discarded. */
  | { action: 'done' }
  | { action: 'finished' }
  | { action: 'missing' };
export type FinishAction = FinishResult['action'];

const START_ACTIONS: ReadonlySet<string> = new Set<StartAction>([
  'run',
  'skip',
  'done',
  'cancel',
  'finished',
  'missing',
  'early',
]);
const FINISH_ACTIONS: ReadonlySet<string> = new Set<FinishAction>([
  'ok',
  'done',
  'finished',
  'missing',
]);

/** The action a script answered, refused when it is none the types know (scripts and types disagree). */
function scriptAction<A extends string>(
  known: ReadonlySet<string>,
  r: unknown[],
  script: string,
): A {
  const action = r[0];
  if (typeof action !== 'string' || !known.has(action))
    throw new Error(`live ${script} script answered an unknown action ${JSON.stringify(action)}`);
  return action as A;
}

/** How long the live state outlives its run (ended) and bounds a run that never ends (running). */
const ENDED_TTL_MS = 3_600_000;
const RUNNING_TTL_MS = 7 * 86_400_000;

// KEYS[1] hash, KEYS[2] log. ARGV: ttl, then field/value pairs. Opening twice changes nothing.
const OPEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

// ARGV: step, worker, ts, previous step ('' for the first). The entry is built as text so its
// first key is always "t" (see TRIM). A step whose predecessor has not finished here is 'early'.
const START = `
local h = KEYS[1]
local st = redis.call('HGET', h, 'status')
if not st then return {'missing'} end
if st == 'ended' then return {'finished'} end
if st == 'cancelling' then return {'cancel'} end
local s = redis.call('HGET', h, 's:' .. ARGV[1])
if s == 'complete' or s == 'skipped' then return {'done'} end
if ARGV[4] ~= '' then
  local p = redis.call('HGET', h, 's:' .. ARGV[4])
  if p ~= 'complete' and p ~= 'skipped' then return {'early'} end
end
local ctx = redis.call('HMGET', h, 'params', 'spec', 'saga')
if s == 'skip' then return {'skip', ctx[1], ctx[2], ctx[3]} end
local a = redis.call('HINCRBY', h, 'a:' .. ARGV[1], 1)
local t = redis.call('HINCRBY', h, 't', 1)
redis.call('HSET', h, 's:' .. ARGV[1], 'running')
redis.call('RPUSH', KEYS[2], '{"t":' .. t .. ',"k":"start","step":' .. cjson.encode(ARGV[1]) .. ',"w":' ..
  cjson.encode(ARGV[2]) .. ',"a":' .. a .. ',"ts":' .. cjson.encode(ARGV[3]) .. '}')
return {'run', ctx[1], ctx[2], ctx[3], a, redis.call('LRANGE', KEYS[2], 0, -1)}`;

// ARGV: step, status (complete | skipped), output JSON or '', duration ms, reason or '', ts.
// A finish is accepted while the run is running or cancelling (the step did its work), never after.
const FINISH = `
local h = KEYS[1]
local st = redis.call('HGET', h, 'status')
if not st then return {'missing'} end
if st == 'ended' then return {'finished'} end
local s = redis.call('HGET', h, 's:' .. ARGV[1])
if s == 'complete' or s == 'skipped' then return {'done'} end
local t = redis.call('HINCRBY', h, 't', 1)
redis.call('HSET', h, 's:' .. ARGV[1], ARGV[2])
local entry = '{"t":' .. t .. ',"k":"finish","step":' .. cjson.encode(ARGV[1]) .. ',"status":' .. cjson.encode(ARGV[2]) ..
  ',"d":' .. tonumber(ARGV[4]) .. ',"ts":' .. cjson.encode(ARGV[6])
if ARGV[5] ~= '' then entry = entry .. ',"reason":' .. cjson.encode(ARGV[5]) end
if ARGV[3] ~= '' then
  redis.call('HSET', h, 'o:' .. ARGV[1], ARGV[3])
  entry = entry .. ',"o":' .. ARGV[3]
end
redis.call('RPUSH', KEYS[2], entry .. '}')
return {'ok', redis.call('LRANGE', KEYS[2], 0, -1)}`;

// ARGV: recorded t. Drops the log's head up to what PostgreSQL has recorded.
const TRIM = `
local n = 0
local upto = tonumber(ARGV[1])
while true do
  local e = redis.call('LINDEX', KEYS[1], 0)
  if not e then break end
  local t = tonumber(string.match(e, '^{"t":(%d+)'))
  if t == nil or t > upto then break end
  redis.call('LPOP', KEYS[1])
  n = n + 1
end
return n`;

const CANCEL = `
if redis.call('HGET', KEYS[1], 'status') == 'running' then redis.call('HSET', KEYS[1], 'status', 'cancelling') return 1 end
return 0`;

// ARGV: ttl. The run ended in PostgreSQL: nothing of it may start or finish any more.
const CLOSE = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'status', 'ended')
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
redis.call('DEL', KEYS[2])
return 1`;

/** The live layer's Lua scripts, by the name ioredis defines each under. */
export type LiveScript =
  'nornOpen' | 'nornStart' | 'nornFinish' | 'nornTrim' | 'nornCancel' | 'nornClose';

const SCRIPTS: Record<LiveScript, { keys: number; lua: string }> = {
  nornOpen: { keys: 2, lua: OPEN },
  nornStart: { keys: 2, lua: START },
  nornFinish: { keys: 2, lua: FINISH },
  nornTrim: { keys: 1, lua: TRIM },
  nornCancel: { keys: 1, lua: CANCEL },
  nornClose: { keys: 2, lua: CLOSE },
};

/** One script call: its keys, then its arguments (ARGV). */
export interface LiveCall {
  name: LiveScript;
  keys: readonly string[];
  args: readonly (string | number)[];
}

/**
 * Every Redis call the live layer makes goes through this, so a test can record and answer them
 * (redisLiveCommands is the real one): a script, several scripts in one round trip, three reads.
 */
export interface LiveCommands {
  /** Loads the scripts ahead of their first use. */
  load(): Promise<void>;
  script(call: LiveCall): Promise<unknown>;
  /** Sends the calls in one round trip (a pipeline, not a transaction). */
  scripts(calls: readonly LiveCall[]): Promise<void>;
  /** The whole list at `key`. */
  list(key: string): Promise<string[]>;
  hmget(key: string, fields: readonly string[]): Promise<(string | null)[]>;
  hget(key: string, field: string): Promise<string | null>;
}

type ScriptMethods = Record<LiveScript, (...argv: (string | number)[]) => Promise<unknown>>;

/**
 * The live layer's calls on `redis` (each script defined once per connection, sent as EVALSHA).
 * Give it the connection the BullMQ worker completes jobs on: see the processor's finish.
 */
export function redisLiveCommands(redis: Redis): LiveCommands {
  const r = redis as Redis & ScriptMethods;
  for (const [name, { keys, lua }] of Object.entries(SCRIPTS))
    if (!(name in r)) r.defineCommand(name, { numberOfKeys: keys, lua });
  return {
    async load() {
      await Promise.all(Object.values(SCRIPTS).map(({ lua }) => redis.script('LOAD', lua)));
    },
    script: (c) => r[c.name](...c.keys, ...c.args),
    async scripts(calls) {
      const pipeline = redis.pipeline() as unknown as ScriptMethods & { exec(): Promise<unknown> };
      for (const c of calls) void pipeline[c.name](...c.keys, ...c.args);
      await pipeline.exec();
    },
    list: (key) => redis.lrange(key, 0, -1),
    hmget: (key, fields) => redis.hmget(key, ...fields),
    hget: (key, field) => redis.hget(key, field),
  };
}

const parse = (text: unknown): Record<string, unknown> =>
  typeof text === 'string' && text ? JSON.parse(text) : {};

export class LiveRuns {
  /**
   * @param commands - where the Redis calls go (redisLiveCommands(connection))
   * @param clock - milliseconds since the epoch, stamped on each start and finish
   */
  constructor(
    private readonly commands: LiveCommands,
    private readonly prefix: string,
    private readonly clock: Clock = systemClock,
  ) {}

  /**
   * Loads the scripts into Redis ahead of their first use, so that calls go out as one EVALSHA
   * each from the start (a NOSCRIPT retry would reach Redis after commands sent later).
   */
  load(): Promise<void> {
    return this.commands.load();
  }

  key(runId: string): string {
    return `${this.prefix}:norn:run:${runId}`;
  }

  private logKey(runId: string): string {
    return `${this.key(runId)}:log`;
  }

  /** Makes an admitted run live (idempotent: an open run is left as it is): its steps may start. */
  async open(
    run: Pick<RunRef, 'id' | 'appId' | 'sagaId' | 'params' | 'spec'>,
    seed: readonly LiveSeed[] = [],
    recorded = 0,
  ): Promise<boolean> {
    // Transition numbers go on from what PostgreSQL recorded (a reopened run), so none is reused.
    const fields = [
      'status',
      'running',
      't',
      String(recorded),
      'app',
      run.appId,
      'saga',
      run.sagaId,
      'params',
      JSON.stringify(run.params ?? {}),
      'spec',
      JSON.stringify(run.spec ?? {}),
    ];
    for (const s of seed) {
      fields.push(`s:${s.step}`, s.state);
      if (s.output !== undefined && s.output !== null)
        fields.push(`o:${s.step}`, JSON.stringify(s.output));
    }
    const opened = await this.commands.script({
      name: 'nornOpen',
      keys: [this.key(run.id), this.logKey(run.id)],
      args: [RUNNING_TTL_MS, ...fields],
    });
    return opened === 1;
  }

  /**
   * May this step run? If so it is recorded as started (attempt + 1) and the run's live log
   * returned. `previous` (the step before it) must have finished, or the answer is 'early'.
   */
  async start(
    runId: string,
    step: string,
    worker: string,
    previous?: string,
  ): Promise<StartResult> {
    const r = (await this.commands.script({
      name: 'nornStart',
      keys: [this.key(runId), this.logKey(runId)],
      args: [step, worker, new Date(this.clock()).toISOString(), previous ?? ''],
    })) as unknown[];
    const action = scriptAction<StartAction>(START_ACTIONS, r, 'start');
    if (action === 'run') {
      return {
        action,
        params: parse(r[1]),
        spec: parse(r[2]),
        sagaId: String(r[3] ?? ''),
        attempt: Number(r[4]),
        log: r[5] as LogEntry[],
      };
    }
    if (action === 'skip')
      return { action, params: parse(r[1]), spec: parse(r[2]), sagaId: String(r[3] ?? '') };
    return { action };
  }

  /** Records a step's finish unless its run is no longer live (then the result is discarded). */
  async finish(
    runId: string,
    step: string,
    status: 'complete' | 'skipped',
    output: unknown,
    durationMs: number,
    reason?: string,
  ): Promise<FinishResult> {
    const json =
      status === 'complete' && output !== undefined && output !== null
        ? JSON.stringify(output)
        : '';
    const r = (await this.commands.script({
      name: 'nornFinish',
      keys: [this.key(runId), this.logKey(runId)],
      args: [
        step,
        status,
        json,
        Math.max(0, Math.round(durationMs)),
        reason ?? '',
        new Date(this.clock()).toISOString(),
      ],
    })) as unknown[];
    const action = scriptAction<FinishAction>(FINISH_ACTIONS, r, 'finish');
    if (action === 'ok') return { action, log: r[1] as LogEntry[] };
    return { action };
  }

  /** The transitions PostgreSQL has not recorded yet, oldest first. */
  pending(runId: string): Promise<LogEntry[]> {
    return this.commands.list(this.logKey(runId));
  }

  /** Drops what PostgreSQL recorded (transition numbers up to `upto`) from the live log. */
  async trim(runId: string, upto: number): Promise<number> {
    return Number(await this.commands.script(this.trimCall(runId, upto)));
  }

  private trimCall(runId: string, upto: number): LiveCall {
    return { name: 'nornTrim', keys: [this.logKey(runId)], args: [upto] };
  }

  /** trim() for several runs, in one round trip. */
  async trimMany(runs: ReadonlyArray<readonly [string, number]>): Promise<void> {
    if (!runs.length) return;
    await this.commands.scripts(runs.map(([runId, upto]) => this.trimCall(runId, upto)));
  }

  /** Outputs of the given steps (those that have one), as later steps of a live run read them. */
  async outputs(runId: string, steps: readonly string[]): Promise<Record<string, unknown>> {
    if (!steps.length) return {};
    const values = await this.commands.hmget(this.key(runId), [
      ...steps.map((s) => `s:${s}`),
      ...steps.map((s) => `o:${s}`),
    ]);
    const out: Record<string, unknown> = {};
    steps.forEach((s, i) => {
      const state = values[i];
      if (state === 'complete' || state === 'skipped' || state === 'skip') {
        const o = values[steps.length + i];
        out[s] = o ? JSON.parse(o) : null;
      }
    });
    return out;
  }

  /** PostgreSQL marked the run cancelling: no further step of it starts. */
  async cancel(runId: string): Promise<void> {
    await this.commands.script({ name: 'nornCancel', keys: [this.key(runId)], args: [] });
  }

  /** PostgreSQL ended the run: nothing of it starts or finishes any more. */
  async close(runId: string): Promise<void> {
    await this.commands.script({
      name: 'nornClose',
      keys: [this.key(runId), this.logKey(runId)],
      args: [ENDED_TTL_MS],
    });
  }

  /** The run's last transition number (0: none), or null when it has no live state. */
  async lastTransition(runId: string): Promise<number | null> {
    const t = await this.commands.hget(this.key(runId), 't');
    return t === null ? null : Number(t);
  }
}

/** The transition number of a live log entry (entries start with `{"t":<n>`). */
export function entryNumber(entry: LogEntry): number {
  const m = /^\{"t":(\d+)/.exec(entry);
  if (!m) throw new Error(`malformed live log entry: ${entry.slice(0, 80)}`);
  return Number(m[1]);
}
