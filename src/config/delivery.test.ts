import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './load.js';

const SECRET = Buffer.alloc(32, 1).toString('base64url');
const load = (env: Record<string, string>) =>
  loadConfig({ env: { PORTCULLIS_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'portcullis-delivery-')), PORTCULLIS_SECRET: SECRET, ...env } });

function optionAtFault(env: Record<string, string>): string {
  try {
    load(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.option;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const NOTIFY_KEY = 'portcullis_live-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0';
const TEMPLATE = 'f33517ff-2a88-4f6e-b855-c550268ce08a';
const SID = `AC${'0123456789abcdef'.repeat(2)}`;
const twilio = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: 'token', TWILIO_FROM: '+447700900000' };

describe('delivery configuration', () => {
  it('defaults to the development outbox for every channel, five attempts and no development pages', () => {
    const config = load({});
    expect(config.delivery).toEqual({
      providers: { sms: 'outbox', voice: 'outbox', email: 'outbox' },
      notify: null,
      twilio: null,
      smtp: null,
      emailFrom: 'Portcullis <no-reply@localhost>',
      maxAttempts: 5,
      sendTimeoutMs: 15_000,
    });
    expect(config.developmentPages).toBe(false);
  });

  it('reads GOV.UK Notify, Twilio and SMTP settings', () => {
    const config = load({
      SMS_PROVIDER: 'notify',
      NOTIFY_API_KEY: NOTIFY_KEY,
      NOTIFY_SMS_TEMPLATE_ID: TEMPLATE,
      VOICE_PROVIDER: 'twilio',
      ...twilio,
      TWILIO_BASE_URL: 'http://127.0.0.1:9999/',
      EMAIL_PROVIDER: 'smtp',
      SMTP_URL: 'smtps://user:pass@mail.example.org:465',
      EMAIL_FROM: 'NHSmail <no-reply@nhs.example>',
      DELIVERY_MAX_ATTEMPTS: '3',
    });
    expect(config.delivery).toEqual({
      providers: { sms: 'notify', voice: 'twilio', email: 'smtp' },
      notify: { apiKey: NOTIFY_KEY, smsTemplateId: TEMPLATE, baseUrl: 'https://api.notifications.service.gov.uk' },
      twilio: { accountSid: SID, authToken: 'token', from: '+447700900000', baseUrl: 'http://127.0.0.1:9999' },
      smtp: { url: 'smtps://user:pass@mail.example.org:465' },
      emailFrom: 'NHSmail <no-reply@nhs.example>',
      maxAttempts: 3,
      sendTimeoutMs: 15_000,
    });
  });

  it('accepts an alphanumeric sender for text messages, but not for calls', () => {
    expect(load({ SMS_PROVIDER: 'twilio', ...twilio, TWILIO_FROM: 'NHSmail' }).delivery.twilio?.from).toBe('NHSmail');
    expect(optionAtFault({ VOICE_PROVIDER: 'twilio', ...twilio, TWILIO_FROM: 'NHSmail' })).toBe('TWILIO_FROM');
  });

  it.each<[string, Record<string, string>, string]>([
    ['notify without its key', { SMS_PROVIDER: 'notify', NOTIFY_SMS_TEMPLATE_ID: TEMPLATE }, 'NOTIFY_API_KEY'],
    ['notify without its template', { SMS_PROVIDER: 'notify', NOTIFY_API_KEY: NOTIFY_KEY }, 'NOTIFY_SMS_TEMPLATE_ID'],
    ['a Notify key of the wrong shape', { SMS_PROVIDER: 'notify', NOTIFY_API_KEY: 'abc', NOTIFY_SMS_TEMPLATE_ID: TEMPLATE }, 'NOTIFY_API_KEY'],
    ['a Notify template that is not an id', { SMS_PROVIDER: 'notify', NOTIFY_API_KEY: NOTIFY_KEY, NOTIFY_SMS_TEMPLATE_ID: 'sign-in' }, 'NOTIFY_SMS_TEMPLATE_ID'],
    ['Notify over plain http elsewhere', { SMS_PROVIDER: 'notify', NOTIFY_API_KEY: NOTIFY_KEY, NOTIFY_SMS_TEMPLATE_ID: TEMPLATE, NOTIFY_BASE_URL: 'http://notify.example.org' }, 'NOTIFY_BASE_URL'],
    ['twilio SMS without a SID', { SMS_PROVIDER: 'twilio', TWILIO_AUTH_TOKEN: 't', TWILIO_FROM: '+447700900000' }, 'TWILIO_ACCOUNT_SID'],
    ['twilio voice without a token', { VOICE_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: SID, TWILIO_FROM: '+447700900000' }, 'TWILIO_AUTH_TOKEN'],
    ['twilio without a from number', { SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: 't' }, 'TWILIO_FROM'],
    ['a Twilio SID of the wrong shape', { ...twilio, SMS_PROVIDER: 'twilio', TWILIO_ACCOUNT_SID: 'SK123' }, 'TWILIO_ACCOUNT_SID'],
    ['Twilio over plain http elsewhere', { ...twilio, SMS_PROVIDER: 'twilio', TWILIO_BASE_URL: 'http://api.twilio.com' }, 'TWILIO_BASE_URL'],
    ['smtp without SMTP_URL', { EMAIL_PROVIDER: 'smtp' }, 'SMTP_URL'],
    ['an SMTP_URL that is not smtp', { EMAIL_PROVIDER: 'smtp', SMTP_URL: 'https://mail.example.org' }, 'SMTP_URL'],
    ['an unknown SMS provider', { SMS_PROVIDER: 'pigeon' }, 'SMS_PROVIDER'],
    ['notify for calls', { VOICE_PROVIDER: 'notify' }, 'VOICE_PROVIDER'],
    ['an EMAIL_FROM that is not an address', { EMAIL_FROM: 'Portcullis' }, 'EMAIL_FROM'],
    ['too many attempts', { DELIVERY_MAX_ATTEMPTS: '50' }, 'DELIVERY_MAX_ATTEMPTS'],
    ['development pages on a public address', { DEVELOPMENT_PAGES: 'true', PUBLIC_URL: 'https://id.example.org' }, 'DEVELOPMENT_PAGES'],
    ['a development-pages flag that is not a boolean', { DEVELOPMENT_PAGES: 'maybe' }, 'DEVELOPMENT_PAGES'],
  ])('refuses %s, naming %s', (_name, env, option) => {
    expect(optionAtFault(env)).toBe(option);
  });

  it('allows development pages on localhost', () => {
    expect(load({ DEVELOPMENT_PAGES: 'true', PUBLIC_URL: 'http://localhost:3000' }).developmentPages).toBe(true);
    expect(load({ DEVELOPMENT_PAGES: '0' }).developmentPages).toBe(false);
  });
});
