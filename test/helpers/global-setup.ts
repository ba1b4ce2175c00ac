/** Builds the front-end assets once before any test renders a page. */
import { buildAssets } from '../../src/web/build-assets.js';

export default function setup(): void {
  buildAssets();
}
