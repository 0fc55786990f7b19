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
  it('claims the served port of each process, and nothing for scheduled, scaled-to-zero or other-target ones', () => {
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
      { app: 'a', process: 'web', port: 8000 },
      { app: 'a', process: 'one', port: 9000 },
    ]);
    expect(portClaims('k', { target: 'kubernetes', processes: { web: { port: 8000 } } })).toEqual(
      [],
    );
    expect(portClaims('x', null)).toEqual([]);
  });

  it("refuses another app's port, naming it, and ignores the app itself", () => {
    const apps = [record('a', { processes: { web: { port: 8000, replicas: 2 } } })];
    expect(() =>
      assertPortsFreeAmong({ name: 'a', processes: { web: { port: 8000 } } } as never, apps),
    ).not.toThrow();
    // Its replicas are behind the proxy on ports of their own: 8001 is free.
    expect(() =>
      assertPortsFreeAmong({ name: 'b', processes: { web: { port: 8001 } } } as never, apps),
    ).not.toThrow();
    expect(() =>
      assertPortsFreeAmong(
        { name: 'b', processes: { api: { port: 8000, replicas: 2 } } } as never,
        apps,
      ),
    ).toThrow("process api wants port 8000, which app a's process web is served on");
  });
});
