/**
 * Session lifetime rules (OWASP ASVS 5 V7.3): an idle timeout and an absolute timeout, both from
 * configuration (1 hour and 24 hours by default).
 */
import type { MethodUse } from './methods.js';

export interface SessionSettings {
  idleSeconds: number;
  absoluteSeconds: number;
}

export type SessionRestriction = 'registration-only';

export interface SessionSnapshot {
  createdAt: Date;
  lastSeenAt: Date;
  methods: MethodUse[];
  restricted: SessionRestriction | null;
}

export type SessionAssessment =
  | { valid: true; touch: boolean }
  | { valid: false; reason: 'idle-timeout' | 'absolute-timeout' };

/** How stale last_seen may get before it is written again; keeps reads from becoming writes. */
export const SESSION_TOUCH_INTERVAL_SECONDS = 60;

export function assessSession(session: SessionSnapshot, now: Date, settings: SessionSettings): SessionAssessment {
  const t = now.getTime();
  if (t >= session.createdAt.getTime() + settings.absoluteSeconds * 1000) return { valid: false, reason: 'absolute-timeout' };
  if (t >= session.lastSeenAt.getTime() + settings.idleSeconds * 1000) return { valid: false, reason: 'idle-timeout' };
  return { valid: true, touch: t - session.lastSeenAt.getTime() >= SESSION_TOUCH_INTERVAL_SECONDS * 1000 };
}

/** When the session row can be deleted: the earlier of the two timeouts. */
export function sessionExpiry(session: Pick<SessionSnapshot, 'createdAt' | 'lastSeenAt'>, settings: SessionSettings): Date {
  return new Date(
    Math.min(session.createdAt.getTime() + settings.absoluteSeconds * 1000, session.lastSeenAt.getTime() + settings.idleSeconds * 1000),
  );
}
