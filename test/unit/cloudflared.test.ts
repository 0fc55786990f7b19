import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import {
  endpointToRoute,
  listIngress,
  removeAppIngress,
  setAppIngress,
} from '../../src/shared/drivers/cloudflared.js';
import type { NornError } from '../../src/shared/errors.js';

const CONFIG = `# managed by hand and by norn
tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef
credentials-file: /root/.cloudflared/6ff42ae2.json # keep me
ingress:
  - hostname: gitlab.widgetcorp.tech
    service: http://localhost:80
  # the API gateway
  - hostname: "*.example.com"
    path: ^/api
    service: http://localhost:8001
    originRequest: { noTLSVerify: true }
  - service: http_status:404
`;

const web = { hostname: 'web.example.org', service: 'http://127.0.0.1:3000' };
const api = { hostname: 'api.example.org', service: 'http://127.0.0.1:3001', path: '^/v1' };

function thrown(fn: () => unknown): NornError {
  try {
    fn();
  } catch (err) {
    return err as NornError;
  }
  throw new Error('expected an error');
}

describe('setAppIngress', () => {
  it('inserts before the catch-all and keeps other rules, keys and comments', () => {
    const { text, changed } = setAppIngress(CONFIG, 'web', [web]);
    expect(changed).toBe(true);
    expect(listIngress(text)).toEqual([
      { hostname: 'gitlab.widgetcorp.tech', service: 'http://localhost:80' },
      {
        hostname: '*.example.com',
        path: '^/api',
        service: 'http://localhost:8001',
        originRequest: { noTLSVerify: true },
      },
      { ...web, app: 'web' },
      { service: 'http_status:404' },
    ]);
    for (const kept of [
      '# managed by hand and by norn',
      '# keep me',
      '# the API gateway',
      '# norn:app=web',
    ]) {
      expect(text).toContain(kept);
    }
    const doc = parseDocument(text).toJS();
    expect(doc.tunnel).toBe('6ff42ae2-765d-4adf-8112-31c55c1551ef');
    expect(doc['credentials-file']).toBe('/root/.cloudflared/6ff42ae2.json');
    expect(Object.keys(doc)).toEqual(['tunnel', 'credentials-file', 'ingress']);
  });

  it('adds a catch-all to a config that has none, and creates ingress when missing', () => {
    const noCatchAll =
      'tunnel: t\ningress:\n  - hostname: a.example.com\n    service: http://localhost:1\n';
    const rules = listIngress(setAppIngress(noCatchAll, 'web', [web]).text);
    expect(rules.map((r) => r.hostname ?? r.service)).toEqual([
      'a.example.com',
      'web.example.org',
      'http_status:404',
    ]);
    for (const bare of ['tunnel: t\n', '', 'tunnel: t\ningress:\n']) {
      expect(listIngress(setAppIngress(bare, 'web', [web]).text)).toEqual([
        { ...web, app: 'web' },
        { service: 'http_status:404' },
      ]);
    }
  });

  it('is a no-op when the same routes are applied again', () => {
    const once = setAppIngress(CONFIG, 'web', [web, api]);
    const twice = setAppIngress(once.text, 'web', [web, api]);
    expect(twice).toEqual({ text: once.text, changed: false });
    // Host names are compared normalised, so a differently-cased re-apply is still a no-op.
    expect(
      setAppIngress(once.text, 'web', [{ ...web, hostname: 'WEB.example.org.' }, api]).changed,
    ).toBe(false);
  });

  it("replaces only the app's own rules", () => {
    let text = setAppIngress(CONFIG, 'web', [web, api]).text;
    text = setAppIngress(text, 'shop', [
      { hostname: 'shop.example.org', service: 'http://127.0.0.1:4000' },
    ]).text;
    const moved = { hostname: 'www.example.org', service: 'http://127.0.0.1:3005' };
    const next = setAppIngress(text, 'web', [moved]);
    expect(next.changed).toBe(true);
    expect(listIngress(next.text).map((r) => [r.hostname ?? '', r.app ?? ''])).toEqual([
      ['gitlab.widgetcorp.tech', ''],
      ['*.example.com', ''],
      ['shop.example.org', 'shop'],
      ['www.example.org', 'web'],
      ['', ''],
    ]);
    expect(next.text).toContain('# the API gateway');
  });

  it('puts a route before an earlier rule that would hide it', () => {
    const wildcard =
      'ingress:\n  - hostname: "*.example.org"\n    service: http://localhost:9\n  - service: http_status:404\n';
    const { text } = setAppIngress(wildcard, 'web', [web]);
    expect(listIngress(text).map((r) => r.hostname)).toEqual([
      'web.example.org',
      '*.example.org',
      undefined,
    ]);
    // The ownership marker of a rule that ends up first survives a round trip.
    expect(listIngress(text)[0]?.app).toBe('web');
    expect(setAppIngress(text, 'web', [web]).changed).toBe(false);
    expect(listIngress(removeAppIngress(text, 'web').text)).toEqual(listIngress(wildcard));
  });

  it('orders an app’s own routes so a path route is not hidden by its bare host route', () => {
    const bare = { hostname: 'api.example.org', service: 'http://127.0.0.1:3001' };
    const { text } = setAppIngress(CONFIG, 'api', [bare, api]);
    expect(
      listIngress(text)
        .filter((r) => r.app === 'api')
        .map((r) => r.path ?? ''),
    ).toEqual(['^/v1', '']);
  });

  it('refuses a host name and path already routed by a rule it does not own', () => {
    const foreign = thrown(() =>
      setAppIngress(CONFIG, 'web', [
        { hostname: 'GitLab.widgetcorp.tech', service: 'http://127.0.0.1:1' },
      ]),
    );
    expect(foreign).toMatchObject({ name: 'NornError', code: 'CONFLICT' });
    expect(foreign.message).toContain('gitlab.widgetcorp.tech');
    expect(foreign.message).toContain('not manage');

    const withWeb = setAppIngress(CONFIG, 'web', [web]).text;
    const otherApp = thrown(() => setAppIngress(withWeb, 'shop', [web]));
    expect(otherApp).toMatchObject({ code: 'CONFLICT' });
    expect(otherApp.message).toContain('web.example.org');
    expect(otherApp.message).toContain('app "web"');

    // The same host name under a different path is a separate route.
    const split = setAppIngress(withWeb, 'shop', [
      { ...web, path: '^/shop', service: 'http://127.0.0.1:4000' },
    ]);
    expect(listIngress(split.text).filter((r) => r.hostname === 'web.example.org')).toHaveLength(2);
  });

  it('converts a flow-style ingress list to block style so markers can be written', () => {
    const { text } = setAppIngress('ingress: [{service: http_status:404}]\n', 'web', [web]);
    expect(text).toContain('# norn:app=web');
    expect(listIngress(text)).toEqual([{ ...web, app: 'web' }, { service: 'http_status:404' }]);
  });

  it('rejects invalid routes and app names', () => {
    const bad = [
      { hostname: 'web.example.org:8443', service: 'http://127.0.0.1:3000' },
      { hostname: 'web.*.org', service: 'http://127.0.0.1:3000' },
      { hostname: '*', service: 'http://127.0.0.1:3000' },
      { hostname: 'web.example.org', service: 'http://127.0.0.1:3000/app' },
      { hostname: 'web.example.org', service: '127.0.0.1:3000' },
      { hostname: 'web.example.org', service: 'http://127.0.0.1:3000', path: '(' },
    ];
    for (const route of bad)
      expect(thrown(() => setAppIngress(CONFIG, 'web', [route]))).toMatchObject({
        code: 'SPEC_INVALID',
      });
    const twoServices = [web, { ...web, service: 'http://127.0.0.1:9' }];
    expect(thrown(() => setAppIngress(CONFIG, 'web', twoServices))).toMatchObject({
      code: 'SPEC_INVALID',
    });
    expect(thrown(() => setAppIngress(CONFIG, 'we b\n- x', [web]))).toMatchObject({
      code: 'BAD_REQUEST',
    });
  });
});

describe('removeAppIngress', () => {
  it('removes only the app’s rules and is then a no-op', () => {
    const withBoth = setAppIngress(setAppIngress(CONFIG, 'web', [web, api]).text, 'shop', [
      { hostname: 'shop.example.org', service: 'http://127.0.0.1:4000' },
    ]).text;
    const removed = removeAppIngress(withBoth, 'web');
    expect(removed.changed).toBe(true);
    expect(listIngress(removed.text).map((r) => r.app ?? r.hostname ?? 'catch-all')).toEqual([
      'gitlab.widgetcorp.tech',
      '*.example.com',
      'shop',
      'catch-all',
    ]);
    expect(removed.text).not.toContain('norn:app=web');
    expect(removeAppIngress(removed.text, 'web')).toEqual({ text: removed.text, changed: false });
    expect(removeAppIngress(CONFIG, 'web')).toEqual({ text: CONFIG, changed: false });
    const back = removeAppIngress(removed.text, 'shop');
    expect(listIngress(back.text)).toEqual(listIngress(CONFIG));
    expect(back.text).toContain('# the API gateway');
  });
});

describe('malformed configs', () => {
  const cases: Array<[string, string]> = [
    ['not YAML', 'ingress: [\n  - secret-token-1234: {\n'],
    ['a list at the top level', '- service: http_status:404\n'],
    ['ingress not a list', 'ingress:\n  service: http_status:404\n'],
    [
      'a rule without service',
      'ingress:\n  - hostname: a.example.com\n  - service: http_status:404\n',
    ],
    ['a rule that is not a mapping', 'ingress:\n  - http_status:404\n'],
    [
      'a non-string hostname',
      'ingress:\n  - hostname: 12\n    service: http://x:1\n  - service: http_status:404\n',
    ],
    [
      'a catch-all before the end',
      'ingress:\n  - service: http_status:404\n  - hostname: a.b\n    service: http://x:1\n',
    ],
    ['duplicate keys', 'ingress: []\ningress: []\n'],
    ['several documents', 'ingress: []\n---\ningress: []\n'],
  ];
  it.each(cases)('rejects %s with SPEC_INVALID', (_, text) => {
    for (const run of [
      () => listIngress(text),
      () => setAppIngress(text, 'web', [web]),
      () => removeAppIngress(text, 'web'),
    ]) {
      const err = thrown(run);
      expect(err).toMatchObject({ name: 'NornError', code: 'SPEC_INVALID' });
      expect(err.message).toMatch(/^cloudflared config: /);
      expect(err.message).not.toContain('secret-token');
    }
  });
});

describe('endpointToRoute', () => {
  const svc = 'http://127.0.0.1:3000';
  it.each([
    ['api.example.com', { hostname: 'api.example.com' }],
    ['API.Example.com.', { hostname: 'api.example.com' }],
    ['api.example.com:8443', { hostname: 'api.example.com' }],
    ['https://api.example.com', { hostname: 'api.example.com' }],
    ['https://api.example.com/', { hostname: 'api.example.com' }],
    ['https://api.example.com/v1', { hostname: 'api.example.com', path: '^/v1' }],
    ['http://api.example.com:8080/v1/', { hostname: 'api.example.com', path: '^/v1/' }],
    [
      'api.example.com/v1.0/(beta)+',
      { hostname: 'api.example.com', path: '^/v1\\.0/\\(beta\\)\\+' },
    ],
    ['https://api.example.com/a%20b', { hostname: 'api.example.com', path: '^/a b' }],
    ['*.example.com', { hostname: '*.example.com' }],
  ])('maps %s', (url, expected) => {
    expect(endpointToRoute(url, svc)).toEqual({ ...expected, service: svc });
  });

  it('escapes regex characters so the path matches literally', () => {
    const path = new RegExp(endpointToRoute('api.example.com/v1.0/(beta)+', svc).path!);
    expect(path.test('/v1.0/(beta)+/items')).toBe(true);
    expect(path.test('/v1x0/beta')).toBe(false);
    expect(path.test('/other/v1.0/(beta)+')).toBe(false);
  });

  it.each([
    'ftp://api.example.com',
    'https://user:pw@api.example.com',
    'https://api.example.com/?token=abc',
    'https://api.example.com/#x',
    'api.*.com',
    '',
    'https://[::1]/',
  ])('rejects %s', (url) => {
    const err = thrown(() => endpointToRoute(url, svc));
    expect(err).toMatchObject({ code: 'SPEC_INVALID' });
    expect(err.message).not.toContain('token=abc');
    expect(err.message).not.toContain('pw');
  });
});
