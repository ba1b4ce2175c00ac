/** Builds the front-end assets once before any test renders a page. */
import { buildAssets } from '../../src/web/build-assets.js';

export default async function setup(): Promise<void> {
  await buildAssets();
}
