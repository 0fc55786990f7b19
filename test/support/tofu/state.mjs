/**
 * The local backend: the state file (state format version 4), `terraform.tfstate` in the working
 * directory unless `terraform.backend.local.path` says where, with a `.backup` of the previous
 * snapshot beside it, and the state lock. Real OpenTofu locks with fcntl(F_SETLK) on the state
 * file and writes `.<name>.lock.info` (mode 0600) beside it (statemgr/filesystem.go), creating
 * the state file's directory first; a second process fails with EAGAIN, "resource temporarily
 * unavailable". Node has no fcntl locks, so the stand-in takes the lock by creating a marker file
 * exclusively (holding its pid), then writes the same lock info file. The marker is
 * `.terraform/tofu-standin.lock` for the default state file and `.<name>.tofu-standin.lock`
 * beside any other, so every working directory whose backend names the same file shares the
 * lock, as they would share the fcntl lock. A lock whose holder has died counts as free, as an
 * fcntl lock is released when its process dies (the info file of a SIGKILLed tofu stays behind).
 */
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { PROVIDER } from './local-file.mjs';

export const TOFU_VERSION = '1.9.1';
const STATE = 'terraform.tfstate';

/**
 * Where the state of working directory `dir` lives, given the configured backend ({type, path}
 * or null): `path` as configured (what the lock info shows), `file` resolved against `dir` (tofu
 * runs in the -chdir directory), and the lock info file and lock marker beside it.
 */
export function stateLocation(dir, backend) {
  const path = backend?.path ?? STATE;
  const file = resolve(dir, path);
  const beside = (name) => join(dirname(file), name);
  return {
    path,
    file,
    lockInfo: beside(`.${basename(file)}.lock.info`),
    marker:
      file === resolve(dir, STATE)
        ? join(dir, '.terraform', 'tofu-standin.lock')
        : beside(`.${basename(file)}.tofu-standin.lock`),
  };
}

export function readState(loc) {
  let text;
  try {
    text = readFileSync(loc.file, 'utf8');
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

export function writeState(loc, prior, state) {
  const path = loc.file;
  mkdirSync(dirname(path), { recursive: true });
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
export function lockState(loc, operation) {
  const infoPath = loc.lockInfo;
  mkdirSync(dirname(loc.file), { recursive: true }); // statemgr's createStateFiles
  mkdirSync(dirname(loc.marker), { recursive: true });
  const held = loc.marker; // stands for the fcntl lock
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
    Path: loc.path,
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
