/**
 * cloudflared ingress editing for the deploy `forge` step and the forge/teardown pipelines: norn
 * sets and removes one app's rules in the operator's cloudflared config file and leaves everything
 * else (other apps' rules, the operator's own rules, other keys, comments, order) alone.
 *
 * Ownership: cloudflared may reject unknown keys in a rule, so a rule norn manages is marked by the
 * comment `# norn:app=<name>` directly above it. The yaml Document API keeps comments through
 * parse → edit → stringify; an operator can adopt or release a rule by editing that comment.
 */
import { realpath } from 'node:fs/promises';
import { type Document, type Node, YAMLSeq, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { NornError } from '../errors.js';
import { runChecked } from '../exec.js';
import {
  type AppRoute,
  isCatchAll,
  normalizeRoutes,
  sameTarget,
  shadows,
} from './cloudflared-routes.js';
import { readFileIfExists, replaceFileAtomic, withFileLock } from './locked-file.js';

export { type AppRoute, endpointToRoute } from './cloudflared-routes.js';

export interface IngressRule {
  hostname?: string;
  path?: string;
  service: string;
  originRequest?: Record<string, unknown>;
}
/** A rule as listed: `app` names the norn app owning it (absent for rules norn does not manage). */
export interface ListedIngressRule extends IngressRule {
  app?: string;
}
export interface IngressEdit {
  text: string;
  changed: boolean;
}

/** What a missing config file is taken to contain. */
export const EMPTY_INGRESS_CONFIG = 'ingress:\n  - service: http_status:404\n';
const CATCH_ALL = { service: 'http_status:404' };
const APP_NAME = /^[a-z0-9][a-z0-9_.-]*$/i;
const MARKER = /^\s*norn:app=([a-z0-9][a-z0-9_.-]*)\s*$/im;

interface Entry {
  rule: IngressRule;
  app: string | undefined;
  /** The YAML node of a rule read from the file; undefined for a rule norn is adding. */
  node: unknown;
  /** 1-based position in the file, for messages. */
  index: number;
}
interface Loaded {
  text: string;
  doc: Document;
  seq: YAMLSeq | undefined;
  /** Every rule but the final catch-all. */
  rules: Entry[];
  catchAll: Entry | undefined;
}

const invalid = (msg: string) => new NornError('SPEC_INVALID', `cloudflared config: ${msg}`);

/** Every rule of the config, in order, with the app owning it where norn manages it. */
export function listIngress(configText: string): ListedIngressRule[] {
  const cfg = load(configText);
  const all = cfg.catchAll ? [...cfg.rules, cfg.catchAll] : cfg.rules;
  return all.map((e) => (e.app ? { ...e.rule, app: e.app } : { ...e.rule }));
}

/**
 * Sets `app`'s rules to `routes`: its earlier rules are replaced, other rules and keys are kept.
 * Each route goes before the catch-all, or before the first earlier rule that would otherwise hide
 * it (e.g. an operator's `*.example.com`), since cloudflared uses the first rule that matches.
 * A route whose host name and path another rule already serves is a CONFLICT. Pure; when nothing
 * changes the input text comes back untouched with `changed: false`.
 */
export function setAppIngress(configText: string, app: string, routes: AppRoute[]): IngressEdit {
  checkAppName(app);
  const wanted = normalizeRoutes(routes);
  const cfg = load(configText);
  const others = cfg.rules.filter((e) => e.app !== app);
  for (const route of wanted) {
    const clash = others.find((e) => sameTarget(e.rule, route));
    if (!clash) continue;
    const owner = clash.app ? `app "${clash.app}"` : 'a rule norn does not manage';
    const what = route.path ? `${route.hostname} (path ${route.path})` : route.hostname;
    const message = `${what} is already routed by ${owner} (cloudflared ingress rule #${clash.index})`;
    throw new NornError('CONFLICT', message, {
      details: { hostname: route.hostname, path: route.path, rule: clash.index, app: clash.app },
    });
  }
  const next = [...others];
  for (const route of wanted) {
    // Going in before the first rule that hides the route never hides a rule that was reachable:
    // whatever the route hides, that earlier rule already hid.
    const at = next.findIndex((e) => shadows(e.rule, route));
    next.splice(at < 0 ? next.length : at, 0, { rule: route, app, node: undefined, index: 0 });
  }
  return commit(cfg, next);
}

/** Removes every rule owned by `app`. Pure; `changed: false` returns the input text untouched. */
export function removeAppIngress(configText: string, app: string): IngressEdit {
  checkAppName(app);
  const cfg = load(configText);
  if (!cfg.rules.some((e) => e.app === app)) return { text: configText, changed: false };
  return commit(
    cfg,
    cfg.rules.filter((e) => e.app !== app),
  );
}

function load(text: string): Loaded {
  const doc = parseDocument(text, { prettyErrors: false });
  const problem = doc.errors[0];
  if (problem) {
    // Only the position: the offending line could hold something private.
    const line = text.slice(0, problem.pos[0]).split('\n').length;
    throw invalid(`not valid YAML (${problem.code} at line ${line})`);
  }
  if (doc.contents !== null && !isMap(doc.contents))
    throw invalid('the top level must be a mapping');
  const node = isMap(doc.contents) ? doc.contents.get('ingress', true) : undefined;
  if (node === undefined || (isScalar(node) && node.value === null)) {
    return { text, doc, seq: undefined, rules: [], catchAll: undefined };
  }
  if (!isSeq(node)) throw invalid('"ingress" must be a list of rules');
  adoptLeadingComment(node);
  let plain: unknown[];
  try {
    plain = (doc.toJS({ maxAliasCount: 100 }) as { ingress: unknown[] }).ingress;
  } catch (err) {
    throw invalid(`cannot read "ingress" (${(err as Error).message})`);
  }
  const entries = plain.map((raw, i) => toEntry(raw, node.items[i], i + 1));
  const last = entries.at(-1);
  const catchAll = last && isCatchAll(last.rule) ? last : undefined;
  const rules = catchAll ? entries.slice(0, -1) : entries;
  const early = rules.find((e) => isCatchAll(e.rule));
  if (early) {
    throw invalid(
      `ingress rule #${early.index} matches every request but is not the last rule (cloudflared refuses this)`,
    );
  }
  return { text, doc, seq: node, rules, catchAll };
}

/**
 * A comment above the first list item is parsed as the list's own comment; treat it as the item's,
 * so a norn rule that ends up first keeps its ownership marker.
 */
function adoptLeadingComment(seq: YAMLSeq) {
  const first = seq.items[0] as Node | undefined;
  if (!seq.commentBefore || !first || seq.flow) return;
  const own = first.commentBefore;
  first.commentBefore = own ? `${seq.commentBefore}\n${own}` : seq.commentBefore;
  seq.commentBefore = undefined;
}

function toEntry(raw: unknown, node: unknown, index: number): Entry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalid(`ingress rule #${index} is not a mapping`);
  }
  const r = raw as Record<string, unknown>;
  const optionalString = (key: string) => {
    const v = r[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') throw invalid(`ingress rule #${index}: "${key}" must be a string`);
    return v;
  };
  if (typeof r.service !== 'string' || !r.service.trim()) {
    throw invalid(`ingress rule #${index} has no service`);
  }
  const o = r.originRequest;
  if (o !== undefined && o !== null && (typeof o !== 'object' || Array.isArray(o))) {
    throw invalid(`ingress rule #${index}: "originRequest" must be a mapping`);
  }
  const rule: IngressRule = { service: r.service };
  const hostname = optionalString('hostname');
  const path = optionalString('path');
  if (hostname !== undefined) rule.hostname = hostname;
  if (path !== undefined) rule.path = path;
  if (o) rule.originRequest = o as Record<string, unknown>;
  const comment = (node as Node | undefined)?.commentBefore;
  return { rule, app: comment ? MARKER.exec(comment)?.[1] : undefined, node, index };
}

/** Writes the new rule list into the document (plus a catch-all if the file had none). */
function commit(cfg: Loaded, rules: Entry[]): IngressEdit {
  if (cfg.catchAll && sameEntries(cfg.rules, rules)) return { text: cfg.text, changed: false };
  const { doc } = cfg;
  const nodes: unknown[] = rules.map((e) => e.node ?? ruleNode(doc, e));
  nodes.push(cfg.catchAll ? cfg.catchAll.node : doc.createNode(CATCH_ALL));
  let seq = cfg.seq;
  if (!seq) {
    if (doc.contents === null) doc.contents = doc.createNode({}) as Document['contents'];
    seq = new YAMLSeq();
    doc.set('ingress', seq);
  }
  seq.items = nodes;
  seq.flow = false; // comments (the ownership markers) need block style
  return { text: doc.toString({ lineWidth: 0 }), changed: true };
}

function ruleNode(doc: Document, e: Entry): Node {
  const node = doc.createNode(e.rule) as Node;
  node.commentBefore = ` norn:app=${e.app}`;
  return node;
}

function sameEntries(a: Entry[], b: Entry[]): boolean {
  const key = ({ app, rule }: Entry) =>
    JSON.stringify([app, rule.hostname ?? '', rule.path ?? '', rule.service, rule.originRequest]);
  return a.length === b.length && a.every((e, i) => key(e) === key(b[i]!));
}

function checkAppName(app: string) {
  if (!APP_NAME.test(app)) {
    throw new NornError(
      'BAD_REQUEST',
      `"${app.slice(0, 60)}" is not a valid app name for an ingress rule`,
    );
  }
}

/**
 * Reads the config file (a missing file is taken as EMPTY_INGRESS_CONFIG), applies `edit`, and
 * writes the result atomically, keeping the file's mode and owner, all under an exclusive lock so
 * concurrent workers never lose each other's rules. A symlinked config is edited where it points.
 * Nothing is written when `edit` reports no change, so callers can skip the tunnel restart.
 */
export async function updateIngressFile(
  path: string,
  edit: (text: string) => IngressEdit,
  o: { signal?: AbortSignal; staleLockMs?: number; lockTimeoutMs?: number } = {},
): Promise<{ changed: boolean }> {
  const target = await realpath(path).catch(() => path);
  const lockOptions = { signal: o.signal, staleMs: o.staleLockMs, timeoutMs: o.lockTimeoutMs };
  return withFileLock(
    target,
    async (lock) => {
      const current = await readFileIfExists(target);
      const result = edit(current?.text ?? EMPTY_INGRESS_CONFIG);
      if (!result.changed) return { changed: false };
      await lock.assertHeld();
      await replaceFileAtomic(target, result.text, {
        mode: current?.mode ?? 0o644,
        owner: current && { uid: current.uid, gid: current.gid },
        signal: o.signal,
      });
      return { changed: true };
    },
    lockOptions,
  );
}

/**
 * Runs the operator's tunnel restart command (NORN_CLOUDFLARED_RESTART: a JSON argv such as
 * '["systemctl","restart","cloudflared"]'). No command configured → skipped; a non-zero exit is
 * COMMAND_FAILED with the output's tail; an abort kills the command's process group (CANCELLED).
 */
export async function restartTunnel(
  argvJson: string | undefined,
  o: { signal?: AbortSignal; onLine?: (l: string) => void } = {},
): Promise<{ skipped?: string }> {
  const argv = parseRestartCommand(argvJson);
  if (!argv) return { skipped: 'no restart command configured' };
  const onLine = o.onLine;
  await runChecked(argv, { signal: o.signal, onLine: onLine && ((line) => onLine(line)) });
  return {};
}

function parseRestartCommand(argvJson: string | undefined): string[] | undefined {
  if (!argvJson?.trim()) return undefined;
  let argv: unknown;
  try {
    argv = JSON.parse(argvJson);
  } catch {
    argv = undefined;
  }
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string') || argv[0] === '') {
    throw new NornError(
      'CONFIG_INVALID',
      'NORN_CLOUDFLARED_RESTART must be a JSON array of strings, e.g. ["systemctl","restart","cloudflared"]',
    );
  }
  return argv.length ? argv : undefined;
}
