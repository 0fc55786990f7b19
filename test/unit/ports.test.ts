import { describe, expect, it } from 'vitest';
import { assertPortsFreeAmong, portClaims } from '../../src/pipelines/deploy/ports.js';
import type { AppRecord } from '../../src/shared/store/apps.js';

const record = (id: string, spec: Record<string, unknown>): AppRecord => ({
  id,
  spec,
  sourceFormat: 'json',
  createdAt: '',
  updatedAt: '',
});

describe('port claims on the Docker host', () => {
  it('counts every replica, and nothing for scheduled, scaled-to-zero or other-target processes', () => {
    expect(
      portClaims('a', {
        processes: {
          web: { port: 8000, replicas: 3 },
          one: { port: 9000 },
          idle: { port: 9100, replicas: 0 },
          tick: { schedule: '* * * * *' },
          bare: {},
        },
      }),
    ).toEqual([
      { app: 'a', process: 'web', first: 8000, last: 8002 },
      { app: 'a', process: 'one', first: 9000, last: 9000 },
    ]);
    expect(portClaims('k', { target: 'kubernetes', processes: { web: { port: 8000 } } })).toEqual(
      [],
    );
    expect(portClaims('x', null)).toEqual([]);
  });

  it('refuses an overlap with another app, naming it, and ignores the app itself', () => {
    const apps = [record('a', { processes: { web: { port: 8000, replicas: 2 } } })];
    expect(() =>
      assertPortsFreeAmong({ name: 'a', processes: { web: { port: 8001 } } } as never, apps),
    ).not.toThrow();
    expect(() =>
      assertPortsFreeAmong({ name: 'b', processes: { web: { port: 8002 } } } as never, apps),
    ).not.toThrow();
    expect(() =>
      assertPortsFreeAmong(
        { name: 'b', processes: { api: { port: 7999, replicas: 2 } } } as never,
        apps,
      ),
    ).toThrow(
      "process api (port 7999-8000) overlaps on port 8000 with app a's process web (port 8000-8001)",
    );
  });
});
