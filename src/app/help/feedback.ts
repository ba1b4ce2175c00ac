/**
 * "Was this article helpful?": the use case behind the help pages' two forms. Every check that can
 * refuse bad input runs before anything is written (a refused answer changes nothing); then the limits
 * are reserved (`increment` before storing, per client address and per article per hour), then the
 * CAPTCHA is used up, then the answer is stored.
 */
import { PortcullisError } from '../../core/errors.js';
import { describeDuration } from '../../core/duration.js';
import { hmac } from '../../crypto/tokens.js';
import { uuidv7 } from '../../crypto/uuid7.js';
import { createHelpFeedbackRepository } from '../../store/repositories/help-feedback.js';
import type { AppContext } from '../context.js';
import { checkCaptcha, spendCaptcha } from './captcha.js';
import { COMMENT_MAX_LENGTH, isFeedbackReason, type FeedbackReasonId } from './reasons.js';

/** A form's problems, each naming its field (the error summary links to it; the captcha has no field in the HTML). */
export interface FeedbackProblem {
  field: 'reasons' | 'comment' | 'captcha';
  code: 'feedback-reason-missing' | 'feedback-reason-invalid' | 'feedback-comment-too-long' | 'captcha-required' | 'captcha-invalid' | 'captcha-expired' | 'captcha-used';
}

export class FeedbackRefused extends Error {
  constructor(readonly problems: FeedbackProblem[]) {
    super(problems.map((p) => p.code).join(', '));
  }
}

/** Reserves one answer against both hourly limits; throws feedback-rate-limited past either. */
async function reserveFeedback(ctx: AppContext, article: string, ip: string): Promise<void> {
  const now = ctx.clock();
  const hour = Math.floor(now.getTime() / 3_600_000);
  const end = new Date((hour + 1) * 3_600_000);
  // The address is kept only as a keyed hash, as other throttle keys are.
  const perAddress = await ctx.throttles.increment(`help-feedback:address:${hmac(ctx.keys.lookupHash, ip)}:${hour}`, now, end);
  const perArticle = await ctx.throttles.increment(`help-feedback:article:${article}:${hour}`, now, end);
  if (perAddress > ctx.config.helpFeedback.perAddressPerHour || perArticle > ctx.config.helpFeedback.perArticlePerHour) {
    throw new PortcullisError('feedback-rate-limited', { wait: describeDuration(Math.ceil((end.getTime() - now.getTime()) / 1000)) });
  }
}

/** "Yes": counted, nothing else asked. */
export async function recordHelpful(ctx: AppContext, article: string, ip: string): Promise<void> {
  await reserveFeedback(ctx, article, ip);
  await createHelpFeedbackRepository(ctx.store.database.db).insert({ id: uuidv7(ctx.clock().getTime()), article, helpful: true, reasons: [], comment: '', createdAt: ctx.clock() });
}

export interface NotHelpfulInput {
  reasons: readonly string[];
  comment: string;
  captcha: string;
}

/** Line endings as one, and no control characters but line breaks and tabs: the comment is plain text. */
export function cleanComment(text: string): string {
  return text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '').trim();
}

/** "No": reasons from the catalogue (at least one), an optional comment, and a solved CAPTCHA. */
export async function recordNotHelpful(ctx: AppContext, article: string, ip: string, input: NotHelpfulInput): Promise<void> {
  const problems: FeedbackProblem[] = [];
  const reasons = [...new Set(input.reasons)];
  if (reasons.length === 0) problems.push({ field: 'reasons', code: 'feedback-reason-missing' });
  else if (!reasons.every(isFeedbackReason)) problems.push({ field: 'reasons', code: 'feedback-reason-invalid' });
  const comment = cleanComment(input.comment);
  if ([...comment].length > COMMENT_MAX_LENGTH) problems.push({ field: 'comment', code: 'feedback-comment-too-long' });
  const captcha = await checkCaptcha(ctx, input.captcha);
  if (!captcha.ok) problems.push({ field: 'captcha', code: captcha.reason });
  if (problems.length || !captcha.ok) throw new FeedbackRefused(problems);
  await reserveFeedback(ctx, article, ip);
  if (!(await spendCaptcha(ctx, captcha.signature!, captcha.expiresAt!))) throw new FeedbackRefused([{ field: 'captcha', code: 'captcha-used' }]);
  await createHelpFeedbackRepository(ctx.store.database.db).insert({
    id: uuidv7(ctx.clock().getTime()),
    article,
    helpful: false,
    reasons: reasons as FeedbackReasonId[],
    comment,
    createdAt: ctx.clock(),
  });
}
