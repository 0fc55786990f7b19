/**
 * LiveCommands over an in-memory Redis: the live layer's Lua scripts (src/queues/live.ts) done in
 * TypeScript, with every call recorded. The real scripts run against real Redis in
 * test/integration/live.test.ts; this lets unit tests see what the live layer asks and answer it.
 */
import type { LiveCall, LiveCommands } from '../../../src/queues/live.js';

export type Recorded =
  | ({ kind: 'script' } & LiveCall)
  | { kind: 'pipeline'; calls: LiveCall[] }
  | { kind: 'list' | 'hget' | 'hmget'; key: string; fields?: readonly string[] };

export class FakeLiveRedis implements LiveCommands {
  readonly hashes = new Map<string, Map<string, string>>();
  readonly lists = new Map<string, string[]>();
  readonly calls: Recorded[] = [];
  loaded = false;

  async load(): Promise<void> {
    this.loaded = true;
  }

  async script(call: LiveCall): Promise<unknown> {
    this.calls.push({ kind: 'script', ...call });
    return this.run(call);
  }

  async scripts(calls: readonly LiveCall[]): Promise<void> {
    this.calls.push({ kind: 'pipeline', calls: [...calls] });
    for (const c of calls) this.run(c);
  }

  async list(key: string): Promise<string[]> {
    this.calls.push({ kind: 'list', key });
    return [...(this.lists.get(key) ?? [])];
  }

  async hmget(key: string, fields: readonly string[]): Promise<(string | null)[]> {
    this.calls.push({ kind: 'hmget', key, fields });
    return fields.map((f) => this.hashes.get(key)?.get(f) ?? null);
  }

  async hget(key: string, field: string): Promise<string | null> {
    this.calls.push({ kind: 'hget', key, fields: [field] });
    return this.hashes.get(key)?.get(field) ?? null;
  }

  /** The script calls made so far, by name (reads and pipelines left out). */
  scriptNames(): string[] {
    return this.calls.flatMap((c) => (c.kind === 'script' ? [c.name] : []));
  }

  private run({ name, keys, args }: LiveCall): unknown {
    const [hashKey = '', logKey = ''] = keys;
    const h = this.hashes.get(hashKey);
    const log = () => {
      let l = this.lists.get(logKey);
      if (!l) this.lists.set(logKey, (l = []));
      return l;
    };
    const a = args.map(String);
    const incr = (field: string) => {
      const n = Number(h!.get(field) ?? 0) + 1;
      h!.set(field, String(n));
      return n;
    };
    switch (name) {
      case 'nornOpen': {
        if (h) return 0;
        const fields = new Map<string, string>();
        for (let i = 1; i < a.length; i += 2) fields.set(a[i]!, a[i + 1]!);
        this.hashes.set(hashKey, fields);
        return 1;
      }
      case 'nornStart': {
        const [step, worker, ts, previous] = a as [string, string, string, string];
        if (!h?.get('status')) return ['missing'];
        if (h.get('status') === 'ended') return ['finished'];
        if (h.get('status') === 'cancelling') return ['cancel'];
        const s = h.get(`s:${step}`);
        if (s === 'complete' || s === 'skipped') return ['done'];
        const p = previous ? h.get(`s:${previous}`) : 'complete';
        if (p !== 'complete' && p !== 'skipped') return ['early'];
        const ctx = [h.get('params'), h.get('spec'), h.get('saga')];
        if (s === 'skip') return ['skip', ...ctx];
        const attempt = incr(`a:${step}`);
        const t = incr('t');
        h.set(`s:${step}`, 'running');
        const entry = { t, k: 'start', step, w: worker, a: attempt, ts };
        log().push(JSON.stringify(entry));
        return ['run', ...ctx, attempt, [...log()]];
      }
      case 'nornFinish': {
        const [step, status, output, d, reason, ts] = a as [
          string,
          string,
          string,
          string,
          string,
          string,
        ];
        if (!h?.get('status')) return ['missing'];
        if (h.get('status') === 'ended') return ['finished'];
        const s = h.get(`s:${step}`);
        if (s === 'complete' || s === 'skipped') return ['done'];
        const t = incr('t');
        h.set(`s:${step}`, status);
        let entry = `{"t":${t},"k":"finish","step":${JSON.stringify(step)},"status":${JSON.stringify(status)},"d":${Number(d)},"ts":${JSON.stringify(ts)}`;
        if (reason) entry += `,"reason":${JSON.stringify(reason)}`;
        if (output) {
          h.set(`o:${step}`, output);
          entry += `,"o":${output}`;
        }
        log().push(`${entry}}`);
        return ['ok', [...log()]];
      }
      case 'nornTrim': {
        const l = this.lists.get(hashKey) ?? [];
        let n = 0;
        while (l.length && Number(/^\{"t":(\d+)/.exec(l[0]!)?.[1]) <= Number(a[0])) {
          l.shift();
          n++;
        }
        return n;
      }
      case 'nornCancel':
        if (h?.get('status') !== 'running') return 0;
        h.set('status', 'cancelling');
        return 1;
      case 'nornClose':
        h?.set('status', 'ended');
        this.lists.delete(logKey);
        return 1;
    }
  }
}
