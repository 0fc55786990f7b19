/** A Nomad plan's diff as the submit step keeps it (src/targets/nomad/plan.ts). */
import { describe, expect, it } from 'vitest';
import { MAX_CHANGES, planSummary } from '../../src/targets/nomad/plan.js';

describe('planSummary', () => {
  it('says what changes, field by field, and what the scheduler would do per group', () => {
    const plan = planSummary('shop', {
      JobModifyIndex: 7,
      Diff: {
        Type: 'Edited',
        ID: 'shop',
        Fields: [
          { Type: 'Edited', Name: 'Meta[norn.release]', Old: '3', New: '4' },
          { Type: 'None', Name: 'Priority', Old: '50', New: '50' },
        ],
        Objects: null,
        TaskGroups: [
          {
            Type: 'Edited',
            Name: 'web',
            Fields: [{ Type: 'Edited', Name: 'Count', Old: '1', New: '2' }],
            Objects: null,
            Tasks: [
              {
                Type: 'Edited',
                Name: 'web',
                Fields: null,
                Objects: [
                  {
                    Type: 'Edited',
                    Name: 'Config',
                    Fields: [{ Type: 'Edited', Name: 'image', Old: 'app:v1', New: 'app:v2' }],
                    Objects: null,
                  },
                ],
                Annotations: ['forces create/destroy update'],
              },
            ],
          },
          { Type: 'Added', Name: 'worker', Fields: null, Objects: null, Tasks: null },
          { Type: 'None', Name: 'idle', Fields: null, Objects: null, Tasks: null },
        ],
      },
      Annotations: {
        DesiredTGUpdates: {
          web: { Place: 1, Stop: 0, DestructiveUpdate: 1, InPlaceUpdate: 0, Ignore: 0 },
          worker: { Place: 1, Stop: 0 },
          idle: { Ignore: 0 },
        },
      },
    });
    expect(plan).toEqual({
      object: 'shop',
      change: 'Edited',
      changes: [
        'Meta[norn.release]: 3 → 4',
        'TaskGroup web: Count: 1 → 2',
        'TaskGroup web: Task web: Config: image: app:v1 → app:v2',
        'TaskGroup worker: Added',
      ],
      groups: { web: { Place: 1, DestructiveUpdate: 1 }, worker: { Place: 1 } },
    });
  });

  it('keeps a summary, not the whole job, of a large diff', () => {
    const Fields = Array.from({ length: MAX_CHANGES + 5 }, (_, i) => ({
      Type: 'Added',
      Name: `Env[K${i}]`,
      New: 'v',
    }));
    const plan = planSummary('big', { Diff: { Type: 'Added', Fields } });
    expect(plan.changes).toHaveLength(MAX_CHANGES + 1);
    expect(plan.changes.at(-1)).toBe('… and 5 more');
    expect(plan.change).toBe('Added');
  });
});
