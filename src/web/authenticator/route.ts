/**
 * The app's views are addressed by the URL fragment, so that every view works offline from one cached
 * page and nothing in it reaches a server log: `#pair=…` (the pairing link from Security info, whose
 * code must never be sent to a server), `#challenge=…` (opened from a notification), `#codes`, and so on.
 */

const ID = '[A-Za-z0-9_-]{1,128}';

export type Route =
  | { view: 'home' }
  | { view: 'pair' }
  | { view: 'challenge'; id: string }
  | { view: 'report'; id: string }
  | { view: 'result' }
  | { view: 'devices'; deviceId: string }
  | { view: 'remove-device'; deviceId: string }
  | { view: 'codes' }
  | { view: 'add-code' }
  | { view: 'delete-code'; id: string }
  | { view: 'export' }
  | { view: 'import' };

const WITH_ID: Array<[RegExp, (id: string) => Route]> = [
  [new RegExp(`^challenge=(${ID})$`), (id) => ({ view: 'challenge', id })],
  [new RegExp(`^report=(${ID})$`), (id) => ({ view: 'report', id })],
  [new RegExp(`^devices=(${ID})$`), (deviceId) => ({ view: 'devices', deviceId })],
  [new RegExp(`^remove=(${ID})$`), (deviceId) => ({ view: 'remove-device', deviceId })],
  [new RegExp(`^codes/delete=(${ID})$`), (id) => ({ view: 'delete-code', id })],
];

const PLAIN: Record<string, Route> = {
  '': { view: 'home' },
  result: { view: 'result' },
  codes: { view: 'codes' },
  'codes/add': { view: 'add-code' },
  'codes/export': { view: 'export' },
  'codes/import': { view: 'import' },
};

/**
 * The view for a fragment (`location.hash`, with or without its `#`), or null when the fragment is not
 * a view but a place on the page (the skip link's `#maincontent`, an error summary's `#number`).
 */
export function parseRoute(hash: string): Route | null {
  const fragment = hash.replace(/^#/, '');
  // The pairing code is read from the whole URL by the SDK (parsePairingUrl), which checks it.
  if (fragment.startsWith('pair=')) return { view: 'pair' };
  const plain = PLAIN[fragment];
  if (plain) return plain;
  for (const [pattern, make] of WITH_ID) {
    const match = pattern.exec(fragment);
    if (match) return make(match[1]!);
  }
  return null;
}

/** The fragment for a view (the pairing view has none of its own: it needs the link's code). */
export function routeHash(route: Exclude<Route, { view: 'pair' }>): string {
  switch (route.view) {
    case 'home':
      return '#';
    case 'challenge':
      return `#challenge=${route.id}`;
    case 'report':
      return `#report=${route.id}`;
    case 'result':
      return '#result';
    case 'devices':
      return `#devices=${route.deviceId}`;
    case 'remove-device':
      return `#remove=${route.deviceId}`;
    case 'codes':
      return '#codes';
    case 'add-code':
      return '#codes/add';
    case 'delete-code':
      return `#codes/delete=${route.id}`;
    case 'export':
      return '#codes/export';
    case 'import':
      return '#codes/import';
  }
}
