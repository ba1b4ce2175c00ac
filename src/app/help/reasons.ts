/**
 * Why an article was not helpful: a fixed catalogue, so answers can be counted and a forged value
 * refused. The id is what is stored; the text is what people see (NHS content style).
 */
export const FEEDBACK_REASONS = [
  { id: 'not-what-i-needed', text: 'It did not answer my question' },
  { id: 'hard-to-understand', text: 'It was hard to understand' },
  { id: 'steps-did-not-work', text: 'The steps did not work for me' },
  { id: 'out-of-date', text: 'It is out of date or wrong' },
  { id: 'too-long', text: 'It was too long' },
  { id: 'something-else', text: 'Something else' },
] as const;

export type FeedbackReasonId = (typeof FEEDBACK_REASONS)[number]['id'];

const IDS: ReadonlySet<string> = new Set(FEEDBACK_REASONS.map((r) => r.id));

export function isFeedbackReason(value: string): value is FeedbackReasonId {
  return IDS.has(value);
}

export function reasonText(id: string): string {
  return FEEDBACK_REASONS.find((r) => r.id === id)?.text ?? id;
}

/** Comments longer than this are refused (about two paragraphs; a textarea with a character count says so). */
export const COMMENT_MAX_LENGTH = 1200;
