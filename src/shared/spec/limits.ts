/**
 * How big an infraspec and its parts may be. An infraspec is a config file: these limits sit far
 * above real use, and exist so that one registration cannot make norn store, parse, hold or hand
 * to Docker something unbounded (a 50 MB env value was once stored). The README lists them.
 */

const KiB = 1024;

export const SPEC_LIMITS = {
  /** The infraspec as stored (JSON, aliases expanded, defaults applied), in bytes. */
  specBytes: 256 * KiB,
  /** The infraspec as sent (YAML or JSON text, comments included), in bytes. */
  textBytes: 512 * KiB,
  /** Nesting of flow collections (`[...]`, `{...}`) in the text; real specs use 3 or 4. */
  flowDepth: 32,
  processes: 32,
  /** Replicas per process (each one is its own container and, with a port, its own host port). */
  replicas: 100,
  /** Variables per env map (the app's `env`, each process's `env`). */
  envKeys: 256,
  envKeyLength: 256,
  /** An env value; Linux refuses a single `KEY=value` over 128 KiB when the container starts. */
  envValueLength: 32 * KiB,
  secrets: 256,
  endpoints: 64,
  volumes: 32,
  /** `command` and `build.test`, run as `/bin/sh -c <command>`. */
  commandLength: 32 * KiB,
  urlLength: 2048,
  pathLength: 1024,
  /** Host names, as DNS allows them. */
  hostLength: 253,
  /** Any other text: branches, regions, time zones, schedules. */
  shortText: 255,
  /** CPU share in MHz and memory in MB. */
  cpu: 1_000_000,
  memory: 1_048_576,
  snapshotsKeep: 1000,
} as const;

/** The longest any single string of an infraspec may be (what the size check names a path for). */
export const LONGEST_STRING = Math.max(SPEC_LIMITS.envValueLength, SPEC_LIMITS.commandLength);

/** `262144` → `256 KiB`, for messages. */
export function formatBytes(bytes: number): string {
  if (bytes < KiB) return `${bytes} bytes`;
  if (bytes < KiB * KiB) return `${Math.round((bytes / KiB) * 10) / 10} KiB`;
  return `${Math.round((bytes / KiB / KiB) * 10) / 10} MiB`;
}
