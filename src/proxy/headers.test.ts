import { describe, expect, it } from 'vitest';
import { downstreamHeaders, headerValue, upstreamHeaders, withoutCookies } from './headers.js';
import { safeReturnPath } from './signin.js';

const base = {
  identity: {
    jwt: 'signed.jwt.value',
    user: 'jane@contoso.example',
    email: 'jane@contoso.example',
    groups: ['Devs', 'Ops, EU'],
  },
  stripAuthorization: true,
  ferryCookies: new Set(['ferry_session', 'ferry_proxy_session']),
  upstreamHost: '10.0.0.5:3000',
  forwardedFor: '192.0.2.7',
  forwardedProto: 'https' as const,
  forwardedHost: 'dash.apps.example',
  requestId: 'req-1',
  upgrade: false,
};

describe('upstream headers', () => {
  it('replaces every identity claim a client makes with the one Ferry vouches for', () => {
    const out = upstreamHeaders(
      {
        host: 'dash.apps.example',
        'x-ferry-user': 'admin@contoso.example',
        'x-ferry-identity': 'forged',
        'x-ferry-whatever': '1',
        'x-forwarded-for': '10.9.9.9',
        'x-forwarded-port': '1',
        forwarded: 'for=10.9.9.9',
        'x-real-ip': '10.9.9.9',
        'x-client-ip': '10.9.9.9',
        'true-client-ip': '10.9.9.9',
        'cf-connecting-ip': '10.9.9.9',
        'x-original-url': '/admin',
        'x-rewrite-url': '/admin',
        authorization: 'Bearer ferry-token',
        cookie: 'ferry_session=s; theme=dark; ferry_proxy_session=t',
        accept: 'text/html',
      },
      base,
    );
    expect(out).toEqual({
      accept: 'text/html',
      cookie: 'theme=dark',
      host: '10.0.0.5:3000',
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'dash.apps.example',
      'x-request-id': 'req-1',
      'x-ferry-identity': 'signed.jwt.value',
      'x-ferry-user': 'jane@contoso.example',
      'x-ferry-email': 'jane@contoso.example',
      'x-ferry-groups': 'Devs,Ops%2C EU',
    });
  });

  it('keeps an app’s own Authorization when the caller came by cookie, and drops hop-by-hop headers', () => {
    const out = upstreamHeaders(
      {
        authorization: 'Basic YXBwOnB3',
        connection: 'keep-alive, x-secret',
        'x-secret': '1',
        te: 'trailers',
        'keep-alive': '5',
      },
      { ...base, stripAuthorization: false },
    );
    expect(out.authorization).toBe('Basic YXBwOnB3');
    expect(out).not.toHaveProperty('x-secret');
    expect(out).not.toHaveProperty('te');
    expect(out).not.toHaveProperty('connection');
    expect(out).not.toHaveProperty('cookie');
  });

  it('keeps the upgrade handshake for websockets only', () => {
    const incoming = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' };
    expect(upstreamHeaders(incoming, base)).not.toHaveProperty('upgrade');
    expect(upstreamHeaders(incoming, { ...base, upgrade: true })).toMatchObject({
      connection: 'upgrade',
      upgrade: 'websocket',
      'sec-websocket-key': 'k',
    });
  });

  it('encodes what a header cannot carry', () => {
    expect(headerValue('Zoë, 100%')).toBe('Zo%C3%AB%2C 100%25');
    expect(withoutCookies('a=1;b=2; ferry_session=x', new Set(['ferry_session']))).toBe('a=1; b=2');
    expect(withoutCookies('sid=1; ferry_csrf=x; ferry_oidc.sig=y', new Set(['my_session']))).toBe('sid=1');
    expect(withoutCookies('my_session=1; a=2', new Set(['my_session']))).toBe('a=2');
    expect(withoutCookies('ferry_session=x', new Set(['ferry_session']))).toBeUndefined();
    expect(
      downstreamHeaders({ 'transfer-encoding': 'chunked', 'set-cookie': ['a=1'], 'content-type': 'x' }),
    ).toEqual({
      'set-cookie': ['a=1'],
      'content-type': 'x',
    });
  });
});

describe('return path after sign-in', () => {
  it('stays on the app’s origin', () => {
    expect(safeReturnPath('/reports?week=48')).toBe('/reports?week=48');
    for (const evil of [
      '//evil.example/',
      '/\\evil.example',
      'https://evil.example/',
      '',
      '/.ferry/callback?code=x',
    ])
      expect(safeReturnPath(evil)).toBe('/');
  });
});
