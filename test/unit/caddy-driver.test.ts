/**
 * The Caddy driver against a stand-in admin endpoint that drops connections: Caddy restarts its
 * servers on every config change, and with many deploys changing routes at once a call can have
 * its connection closed under it. Calls are idempotent, so the driver tries again; a Caddy that
 * keeps refusing is reported as unreachable, naming what to run.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createCaddyDriver } from '../../src/shared/drivers/caddy.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** An admin endpoint that destroys the first `drops` connections, then answers `{}` to a GET. */
async function flaky(drops: number) {
  let seen = 0;
  server = createServer((req, res) => {
    seen++;
    if (seen <= drops) return req.socket.destroy();
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen: () => seen };
}

describe('the Caddy driver', () => {
  it('tries again when Caddy drops the connection mid-call', async () => {
    const admin = await flaky(2);
    const proxy = createCaddyDriver({ adminUrl: admin.url });
    await expect(proxy.routes()).resolves.toEqual({});
    expect(admin.seen()).toBe(3);
  });

  it('gives up after a few tries, saying Caddy is not answering and what to run', async () => {
    const admin = await flaky(100);
    const proxy = createCaddyDriver({ adminUrl: admin.url });
    await expect(proxy.routes()).rejects.toThrow(
      /ingress proxy \(Caddy\) is not answering at .*run script\/docker-up/,
    );
    expect(admin.seen()).toBe(5);
  });
});
