import { describe, expect, it } from 'vitest';
import type { FlowJob } from 'bullmq';
import { buildFlow, rootJobId } from '../../src/queues/flow.js';
import { PipelineRegistry, type PipelineDefinition } from '../../src/queues/pipeline.js';
import type { RunRef } from '../../src/shared/store/runs.js';

const run: RunRef = {
  id: '0b7c2d1e-1111-4222-8333-444455556666',
  appId: 'a',
  sagaId: 's',
  scope: 'app:a',
  pipeline: 'p',
  version: '1',
  eventPrefix: 'p',
  queue: 'steps',
  steps: ['clone', 'build', 'submit'],
  status: 'running',
  params: {},
};

function chain(node: FlowJob): FlowJob[] {
  const out = [node];
  while (node.children?.[0]) {
    node = node.children[0];
    out.push(node);
  }
  return out;
}

describe('buildFlow', () => {
  it('nests steps so the first is the deepest child and the last is the root', () => {
    const nodes = chain(buildFlow(run));
    expect(nodes.map((n) => n.name)).toEqual(['submit', 'build', 'clone']);
    expect(nodes.map((n) => n.opts?.jobId)).toEqual([
      `${run.id}.submit`,
      `${run.id}.build`,
      `${run.id}.clone`,
    ]);
    expect(rootJobId(run)).toBe(`${run.id}.submit`);
    expect(nodes.every((n) => !String(n.opts?.jobId).includes(':'))).toBe(true);
  });

  it('fails parents on failure everywhere but the root, and takes retries from the definition', () => {
    const def = {
      steps: [
        { name: 'clone', run: async () => null },
        { name: 'build', attempts: 3, backoffMs: 10, run: async () => null },
        { name: 'submit', run: async () => null },
      ],
    };
    const [root, build, clone] = chain(buildFlow(run, def));
    expect(root!.opts?.failParentOnFailure).toBeUndefined();
    expect(build!.opts).toMatchObject({
      failParentOnFailure: true,
      attempts: 3,
      backoff: { type: 'exponential', delay: 10 },
    });
    expect(clone!.opts).toMatchObject({ failParentOnFailure: true, attempts: 1 });
    expect(clone!.data).toMatchObject({
      runId: run.id,
      step: 'clone',
      index: 0,
      total: 3,
      pipeline: 'p',
      version: '1',
    });
  });

  it('tells each step which one comes before it (the first has none)', () => {
    const nodes = chain(buildFlow(run)).reverse();
    expect(nodes.map((n) => (n.data as { previous?: string }).previous)).toEqual([
      undefined,
      'clone',
      'build',
    ]);
  });
});

describe('PipelineRegistry', () => {
  const def = (over: Partial<PipelineDefinition>): PipelineDefinition => ({
    name: 'deploy',
    version: '1',
    steps: [{ name: 'a', run: async () => null }],
    ...over,
  });

  it('keeps every version and serves the latest to new runs', () => {
    const r = new PipelineRegistry([def({}), def({ version: '2' })]);
    expect(r.latest('deploy').version).toBe('2');
    expect(r.get('deploy', '1').version).toBe('1');
    expect(() => r.get('deploy', '3')).toThrow(/does not have pipeline deploy@3/);
    expect(() => r.latest('nope')).toThrow(/no pipeline named "nope"/);
  });

  it('refuses the queue name the live state uses', () => {
    expect(() => new PipelineRegistry([def({ queue: 'norn' })])).toThrow(
      /queue "norn" is reserved/,
    );
  });

  it('rejects malformed definitions with every problem', () => {
    expect(
      () =>
        new PipelineRegistry([
          def({
            name: 'Bad:Name',
            steps: [
              { name: 'x', run: async () => null },
              { name: 'x', run: async () => null },
            ],
          }),
        ]),
    ).toThrow(/name "Bad:Name".*step "x" appears twice/);
    expect(() => new PipelineRegistry([def({ steps: [] })])).toThrow(/at least one step/);
    expect(() => new PipelineRegistry([def({ queue: 'a:b' })])).toThrow(/may not contain/);
  });
});
