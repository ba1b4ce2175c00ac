/**
 * Builds the front-end assets once before any test renders a page, and the compiled CLI from the
 * current sources, so tests that run the real binary run what `npm ci` ships.
 */
import { buildCliBundle } from '../../src/cli/bundle.js';
import { buildAssets } from '../../src/web/build-assets.js';

export default async function setup(): Promise<void> {
  await buildAssets();
  await buildCliBundle();
}
