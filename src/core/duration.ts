/**
 * Durations in configuration and on the command line: "90s", "10m", "1h", "7d", or plain seconds.
 * Pure; returns whole seconds, or null when the text is not a duration.
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(text);
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = UNIT_SECONDS[match[2] || 's'];
  if (!Number.isSafeInteger(amount) || unit === undefined) return null;
  return amount * unit;
}

/** "1 hour", "15 minutes", "2 days": for messages shown to people (NHS content style: plain words). */
export function describeDuration(seconds: number): string {
  const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
  if (seconds < 60) return plural(Math.max(1, Math.ceil(seconds)), 'second');
  if (seconds < 3600) return plural(Math.ceil(seconds / 60), 'minute');
  if (seconds < 86_400) return plural(Math.ceil(seconds / 3600), 'hour');
  return plural(Math.ceil(seconds / 86_400), 'day');
}
