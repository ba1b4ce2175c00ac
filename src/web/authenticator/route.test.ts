import { describe, expect, it } from 'vitest';
import { parseRoute, routeHash, type Route } from './route.js';

const ID = '0190a4c2-7b1e-7c3d-9f00-123456789abc';

describe('routes in the fragment', () => {
  it.each<[string, Route | null]>([
    ['', { view: 'home' }],
    ['#', { view: 'home' }],
    ['#pair=AbCdEfGhIjKlMnOpQrStUv', { view: 'pair' }],
    // The pairing code is checked by the SDK (parsePairingUrl), which says what is wrong with it.
    ['#pair=', { view: 'pair' }],
    [`#challenge=${ID}`, { view: 'challenge', id: ID }],
    [`#report=${ID}`, { view: 'report', id: ID }],
    ['#result', { view: 'result' }],
    [`#devices=${ID}`, { view: 'devices', deviceId: ID }],
    [`#remove=${ID}`, { view: 'remove-device', deviceId: ID }],
    ['#codes', { view: 'codes' }],
    ['#codes/add', { view: 'add-code' }],
    [`#codes/delete=${ID}`, { view: 'delete-code', id: ID }],
    ['#codes/export', { view: 'export' }],
    ['#codes/import', { view: 'import' }],
    // Places on the page, not views: the skip link and an error summary's links.
    ['#maincontent', null],
    ['#number', null],
    // Ids are what the server makes; anything else is not a view.
    ['#challenge=', null],
    ['#challenge=a/b', null],
    ['#challenge=<script>', null],
    [`#challenge=${'a'.repeat(129)}`, null],
    ['#codes/delete=', null],
  ])('%s', (hash, route) => {
    expect(parseRoute(hash)).toEqual(route);
  });

  it('makes the fragment for every view that has one, and reads it back', () => {
    const routes: Array<Exclude<Route, { view: 'pair' }>> = [
      { view: 'home' },
      { view: 'challenge', id: ID },
      { view: 'report', id: ID },
      { view: 'result' },
      { view: 'devices', deviceId: ID },
      { view: 'remove-device', deviceId: ID },
      { view: 'codes' },
      { view: 'add-code' },
      { view: 'delete-code', id: ID },
      { view: 'export' },
      { view: 'import' },
    ];
    for (const route of routes) expect(parseRoute(routeHash(route))).toEqual(route);
  });
});
