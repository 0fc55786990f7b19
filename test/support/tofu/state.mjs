/**
 * The local backend: `terraform.tfstate` (state format version 4) with a `.backup` of the previous
 * snapshot, and the state lock. Real OpenTofu locks with fcntl(F_SETLK) on the state file and
 * writes `.terraform.tfstate.lock.info` (mode 0600) beside it (statemgr/filesystem.go); a second
 * process fails with EAGAIN, "resource temporarily unavailable". Node has no fcntl locks, so the
 * stand-in takes the lock by creating `.terraform/tofu-standin.lock` exclusively (holding its pid),
 * then writes the same lock info file. A lock whose holder has died counts as free, as an fcntl
 * lock is released when its process dies (the info file of a SIGKILLed tofu stays behind).
 */
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROVIDER } from './local-file.mjs';

export const TOFU_VERSION = '1.9.1';
const STATE = 'terraform.tfstate';
const LOCK_INFO = '.terraform.tfstate.lock.info';

export function readState(dir) {
  let text;
  try {
    text = readFileSync(join(dir, STATE), 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return null;
    throw e;
  }
  if (text.trim() === '') return null; // tofu creates an empty file when it first locks
  return JSON.parse(text);
}

/** The resources of a state as {address: attributes}. */
export function stateObjects(state) {
  const out = {};
  for (const r of state?.resources ?? [])
    if (r.mode === 'managed' && r.instances[0])
      out[`${r.type}.${r.name}`] = r.instances[0].attributes;
  return out;
}

/** A new snapshot of `objects`: the lineage is kept (or made), the serial goes up by one. */
export function nextState(prior, objects) {
  return {
    version: 4,
    terraform_version: TOFU_VERSION,
    serial: (prior?.serial ?? 0) + 1,
    lineage: prior?.lineage ?? randomUUID(),
    outputs: {},
    resources: Object.keys(objects)
      .sort()
      .map((address) => {
        const [type, name] = address.split('.');
        return {
          mode: 'managed',
          type,
          name,
          provider: `provider["${PROVIDER}"]`,
          instances: [
            { schema_version: 0, attributes: sortKeys(objects[address]), sensitive_attributes: [] },
          ],
        };
      }),
    check_results: null,
  };
}

export function writeState(dir, prior, state) {
  const path = join(dir, STATE);
  if (prior) writeFileSync(`${path}.backup`, `${JSON.stringify(prior, null, 2)}\n`);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${path}.tmp`, path);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
};

export class LockError extends Error {
  constructor(info) {
    super('Error acquiring the state lock');
    this.info = info;
  }
}

/** Takes the state lock for `operation` ("OperationTypePlan"/"OperationTypeApply"); returns unlock. */
export function lockState(dir, operation) {
  const infoPath = join(dir, LOCK_INFO);
  mkdirSync(join(dir, '.terraform'), { recursive: true });
  const held = join(dir, '.terraform', 'tofu-standin.lock'); // stands for the fcntl lock
  try {
    writeFileSync(held, String(process.pid), { flag: 'wx' });
  } catch (e) {
    if (e.code !== 'EEXIST') throw e;
    let text = '';
    try {
      text = readFileSync(held, 'utf8');
    } catch {
      /* released just now */
    }
    // An empty file is a holder between its create and its write: alive.
    if (text === '' || alive(Number(text))) throw new LockError(readLockInfo(infoPath));
    writeFileSync(held, String(process.pid)); // the holder died, and its lock with it
  }
  const info = {
    ID: randomUUID(),
    Operation: operation,
    Info: '',
    Who: `${userInfo().username}@${hostname()}`,
    Version: TOFU_VERSION,
    Created: new Date().toISOString().replace('Z', '000000Z'),
    Path: STATE,
  };
  writeFileSync(infoPath, JSON.stringify(info), { mode: 0o600 });
  return () => {
    rmSync(infoPath, { force: true });
    rmSync(held, { force: true });
  };
}

function readLockInfo(path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

/** LockInfo.String() in statemgr/locker.go; Created in Go's time.Time format. */
export function lockInfoText(info) {
  if (!info) return '';
  const created = String(info.Created).replace('T', ' ').replace(/Z$/, ' +0000 UTC');
  return [
    'Lock Info:',
    `  ID:        ${info.ID}`,
    `  Path:      ${info.Path}`,
    `  Operation: ${info.Operation}`,
    `  Who:       ${info.Who}`,
    `  Version:   ${info.Version}`,
    `  Created:   ${created}`,
    `  Info:      ${info.Info}`,
    '',
  ].join('\n');
}

/** Go encodes cty objects with their attributes sorted. */
const sortKeys = (o) =>
  Object.fromEntries(
    Object.keys(o)
      .sort()
      .map((k) => [k, o[k]]),
  );
