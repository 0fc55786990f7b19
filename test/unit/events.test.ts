/** One pub/sub message per commit: parseEvents reads a JSON array of envelopes (or one). */
import { describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { EventBus } from '../../src/queues/bus.js';
import { parseEvents } from '../../src/shared/events.js';

const env = (id: number) => ({
  id,
  seq: id,
  type: 'deploy.step',
  appId: 'a',
  runId: 'r',
  sagaId: 'r',
  ts: '2026-12-02T00:00:00.000Z',
  payload: {},
});

describe('parseEvents', () => {
  it('reads a commit’s events, in order, from one message', () => {
    expect(parseEvents(JSON.stringify([env(1), env(2), env(3)])).map((e) => e.id)).toEqual([
      1, 2, 3,
    ]);
  });

  it('reads a single envelope, and nothing from anything else', () => {
    expect(parseEvents(JSON.stringify(env(7)))).toEqual([env(7)]);
    for (const bad of ['', 'null', '42', '"x"', '{', '[1, null, {"id": "1"}]', '{}'])
      expect(parseEvents(bad)).toEqual([]);
    expect(parseEvents(JSON.stringify([env(1), { nope: true }]))).toEqual([env(1)]);
  });
});

describe('EventBus.publish', () => {
  it('sends a commit’s events as one message, and nothing for none', async () => {
    const sent: Array<[string, string]> = [];
    const redis = {
      publish: async (channel: string, message: string) => {
        sent.push([channel, message]);
        return 1;
      },
    } as unknown as Redis;
    const bus = new EventBus(redis, 'pfx');
    await bus.publish([env(1), env(2)]);
    await bus.publish([]);
    await bus.publishText([JSON.stringify(env(3))]);
    expect(sent).toEqual([
      ['pfx:events', JSON.stringify([env(1), env(2)])],
      ['pfx:events', JSON.stringify([env(3)])],
    ]);
    expect(parseEvents(sent[0]![1]).map((e) => e.id)).toEqual([1, 2]);
  });
});
