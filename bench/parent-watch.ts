/**
 * Preloaded into every worker process the bench starts (`node --import tsx --import
 * bench/parent-watch.ts …`): when the bench dies without cleaning up (SIGKILL, crash), the worker
 * is re-parented, notices, and shuts itself down instead of polling Redis forever.
 */
const parent = process.ppid;

setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 500).unref();
