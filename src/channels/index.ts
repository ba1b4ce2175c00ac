/**
 * Delivery of text messages, calls and email: what callers use.
 * Wiring: `createDelivery` is built in createAppContext (ctx.delivery), started by `portcullis serve`
 * and closed with the context.
 */
export type { ChannelKind, OutgoingMessage, Provider, SendContext } from './types.js';
export { channelKinds } from './types.js';
export { DeliveryError, deliveryErrorCatalogue, isDeliveryError, type DeliveryErrorCode } from './errors.js';
export { checkMessage, maskEmailAddress, maskPhoneNumber, maskRecipient } from './messages.js';
export { createDelivery, type Delivery, type DeliveryOptions, type OutboxEntry } from './outbox.js';
