/**
 * The engine's answers are unions of exactly what the SQL functions (001_baseline.sql) and the
 * live state's Lua scripts (src/queues/live.ts) return, so a new action breaks the build where a
 * caller switches on them (each switch ends in `unreachable`).
 */

import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  LiveRuns,
  type FinishAction,
  type LiveCommands,
  type StartAction,
} from '../../src/queues/live.js';
import type {
  FinalizerDoneResult,
  RequestCancelResult,
  RequestRunResult,
  RunSucceedResult,
  StepFailResult,
  StepStatus,
  TransitionAction,
} from '../../src/shared/store/runs.js';

describe('engine action unions', () => {
  it('name exactly what each SQL function returns', () => {
    expectTypeOf<RunSucceedResult['action']>().toEqualTypeOf<
      'missing' | 'finished' | 'fenced' | 'incomplete' | 'ended'
    >();
    expectTypeOf<StepFailResult['action']>().toEqualTypeOf<
      'missing' | 'finished' | 'fenced' | 'retry' | 'ended'
    >();
    expectTypeOf<RequestCancelResult['action']>().toEqualTypeOf<
      'missing' | 'finished' | 'fenced' | 'ended' | 'cancelling'
    >();
    expectTypeOf<FinalizerDoneResult['action']>().toEqualTypeOf<'missing' | 'done' | 'ok'>();
    expectTypeOf<RequestRunResult['action']>().toEqualTypeOf<
      'queued' | 'rejected' | 'coalesced' | 'no-app'
    >();
    expectTypeOf<TransitionAction>().toEqualTypeOf<
      | 'missing'
      | 'finished'
      | 'fenced'
      | 'incomplete'
      | 'ended'
      | 'retry'
      | 'cancelling'
      | 'done'
      | 'ok'
    >();
    expectTypeOf<StepStatus>().toEqualTypeOf<
      'pending' | 'running' | 'complete' | 'failed' | 'skipped' | 'cancelled' | 'not_run'
    >();
  });

  it('name exactly what the live scripts return', () => {
    expectTypeOf<StartAction>().toEqualTypeOf<
      'run' | 'skip' | 'done' | 'cancel' | 'finished' | 'missing' | 'early'
    >();
    expectTypeOf<FinishAction>().toEqualTypeOf<'ok' | 'done' | 'finished' | 'missing'>();
  });
});

describe('LiveRuns', () => {
  /** Stands in for Redis whose start and finish scripts answer `answer`. */
  const live = (answer: unknown[]) =>
    new LiveRuns(
      {
        load: async () => {},
        script: async () => answer,
        scripts: async () => [],
        list: async () => [],
      } as unknown as LiveCommands,
      'p',
    );

  it('refuses an action its scripts are not known to answer', async () => {
    await expect(live(['maybe']).start('r', 's', 'w')).rejects.toThrow(
      'live start script answered an unknown action "maybe"',
    );
    await expect(live([7]).finish('r', 's', 'complete', null, 0)).rejects.toThrow(
      'live finish script answered an unknown action 7',
    );
  });

  it('passes the known ones on', async () => {
    await expect(live(['early']).start('r', 's', 'w')).resolves.toEqual({ action: 'early' });
    await expect(live(['ok', ['{"t":1}']]).finish('r', 's', 'complete', null, 0)).resolves.toEqual({
      action: 'ok',
      log: ['{"t":1}'],
    });
  });
});
