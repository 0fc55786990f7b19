/** The live layer's Redis calls per step start and finish, through an in-memory command runner. */
import { beforeEach, describe, expect, it } from 'vitest';
import { entryNumber, LiveRuns } from '../../src/queues/live.js';
import { FakeLiveRedis } from './support/fake-live.js';
import { manualTime } from './support/manual-time.js';

const RUN = {
  id: 'run-1',
  appId: 'app-1',
  sagaId: 'saga-1',
  params: { ref: 'main' },
  spec: { name: 'hello' },
};
const HASH = 'pfx:norn:run:run-1';
const LOG = 'pfx:norn:run:run-1:log';
const iso = (ms: number) => new Date(ms).toISOString();

describe('LiveRuns commands', () => {
  let redis: FakeLiveRedis;
  let time: ReturnType<typeof manualTime>;
  let live: LiveRuns;
  beforeEach(() => {
    redis = new FakeLiveRedis();
    time = manualTime();
    live = new LiveRuns(redis, 'pfx', time.clock);
  });

  it('opens a run once, with its context, seed and transition count', async () => {
    const seed = [{ step: 'clone', state: 'skip' as const, output: { sha: 'abc' } }];
    expect(await live.open(RUN, seed, 4)).toBe(true);
    expect(await live.open(RUN)).toBe(false);
    expect(redis.calls[0]).toEqual({
      kind: 'script',
      name: 'nornOpen',
      keys: [HASH, LOG],
      args: [
        7 * 86_400_000,
        ...['status', 'running', 't', '4', 'app', 'app-1', 'saga', 'saga-1'],
        ...['params', '{"ref":"main"}', 'spec', '{"name":"hello"}'],
        ...['s:clone', 'skip', 'o:clone', '{"sha":"abc"}'],
      ],
    });
    expect(redis.scriptNames()).toEqual(['nornOpen', 'nornOpen']);
  });

  it('issues one nornStart and one nornFinish per step, stamped by the injected clock', async () => {
    await live.open(RUN);
    const t0 = time.clock();
    const started = await live.start('run-1', 'clone', 'worker-a');
    expect(started).toMatchObject({
      action: 'run',
      attempt: 1,
      params: RUN.params,
      spec: RUN.spec,
      sagaId: 'saga-1',
    });
    time.tick(1_234.4);
    const finished = await live.finish('run-1', 'clone', 'complete', { sha: 'abc' }, 1_234.4);
    time.tick(10);
    await live.start('run-1', 'build', 'worker-b', 'clone');
    time.tick(5);
    await live.finish('run-1', 'build', 'skipped', { ignored: true }, -3, 'cached');

    const scripts = redis.calls.filter((c) => c.kind === 'script').slice(1);
    expect(scripts).toEqual([
      {
        kind: 'script',
        name: 'nornStart',
        keys: [HASH, LOG],
        args: ['clone', 'worker-a', iso(t0), ''],
      },
      {
        kind: 'script',
        name: 'nornFinish',
        keys: [HASH, LOG],
        // Duration rounded; output as JSON; no reason.
        args: ['clone', 'complete', '{"sha":"abc"}', 1_234, '', iso(t0 + 1_234.4)],
      },
      {
        kind: 'script',
        name: 'nornStart',
        keys: [HASH, LOG],
        args: ['build', 'worker-b', iso(t0 + 1_244.4), 'clone'],
      },
      {
        kind: 'script',
        name: 'nornFinish',
        keys: [HASH, LOG],
        // A skipped step keeps no output; a negative duration is sent as 0.
        args: ['build', 'skipped', '', 0, 'cached', iso(t0 + 1_249.4)],
      },
    ]);
    // The finish hands back the whole live log: both transitions of the step, in order.
    expect(finished.action).toBe('ok');
    const log = finished.action === 'ok' ? finished.log : [];
    expect(log.map(entryNumber)).toEqual([1, 2]);
    expect(JSON.parse(log[1]!)).toEqual({
      t: 2,
      k: 'finish',
      step: 'clone',
      status: 'complete',
      d: 1_234,
      ts: iso(t0 + 1_234.4),
      o: { sha: 'abc' },
    });
  });

  it('answers what the run allows: early, done, cancel, finished, missing', async () => {
    expect(await live.start('run-1', 'clone', 'w')).toEqual({ action: 'missing' });
    await live.open(RUN);
    expect(await live.start('run-1', 'build', 'w', 'clone')).toEqual({ action: 'early' });
    await live.start('run-1', 'clone', 'w');
    await live.finish('run-1', 'clone', 'complete', null, 1);
    expect(await live.start('run-1', 'clone', 'w')).toEqual({ action: 'done' });
    await live.cancel('run-1');
    expect(await live.start('run-1', 'build', 'w', 'clone')).toEqual({ action: 'cancel' });
    await live.close('run-1');
    expect(await live.start('run-1', 'build', 'w', 'clone')).toEqual({ action: 'finished' });
    expect(await live.finish('run-1', 'build', 'complete', 1, 1)).toEqual({ action: 'finished' });
    expect(redis.calls.filter((c) => c.kind === 'script' && c.name === 'nornClose')).toEqual([
      { kind: 'script', name: 'nornClose', keys: [HASH, LOG], args: [3_600_000] },
    ]);
  });

  it('reads outputs of finished steps in one HMGET and trims many logs in one pipeline', async () => {
    await live.open(RUN, [{ step: 'clone', state: 'complete', output: { sha: 'abc' } }]);
    await live.start('run-1', 'build', 'w', 'clone');
    await live.finish('run-1', 'build', 'complete', { image: 'x' }, 1);
    redis.calls.length = 0;

    expect(await live.outputs('run-1', ['clone', 'build', 'test'])).toEqual({
      clone: { sha: 'abc' },
      build: { image: 'x' },
    });
    expect(redis.calls).toEqual([
      {
        kind: 'hmget',
        key: HASH,
        fields: ['s:clone', 's:build', 's:test', 'o:clone', 'o:build', 'o:test'],
      },
    ]);

    redis.calls.length = 0;
    await live.trimMany([]);
    expect(redis.calls).toEqual([]);
    await live.trimMany([
      ['run-1', 1],
      ['run-2', 7],
    ]);
    expect(redis.calls).toEqual([
      {
        kind: 'pipeline',
        calls: [
          { name: 'nornTrim', keys: [LOG], args: [1] },
          { name: 'nornTrim', keys: ['pfx:norn:run:run-2:log'], args: [7] },
        ],
      },
    ]);
    expect((await live.pending('run-1')).map(entryNumber)).toEqual([2]);
    expect(await live.lastTransition('run-1')).toBe(2);
    expect(await live.lastTransition('run-9')).toBeNull();
  });
});
