/**
 * The development provider: nothing leaves the machine. "Sending" marks the message delivered and keeps
 * its payload (sealed at rest) so a developer can read it with `portcullis outbox` or at /dev/outbox.
 */
import type { Provider } from '../types.js';

export const OUTBOX_PROVIDER_NAME = 'outbox';

export function createOutboxProvider(): Provider {
  return {
    name: OUTBOX_PROVIDER_NAME,
    retainsContent: true,
    async send() {
      return {};
    },
  };
}
