/**
 * The feedback report for administrators: per article, how many found it helpful and how many not,
 * the reasons counted, and the comments, over a period. Used by `portcullis feedback report` (and the
 * admin console when it lands).
 */
import { createHelpFeedbackRepository, type HelpFeedbackQuery } from '../../store/repositories/help-feedback.js';
import { csvCell } from '../compliance-csv.js';
import type { AppContext } from '../context.js';
import { FEEDBACK_REASONS } from './reasons.js';

export interface ArticleFeedbackSummary {
  article: string;
  helpful: number;
  notHelpful: number;
  /** Count per reason id, every reason in the catalogue present. */
  reasons: Record<string, number>;
  comments: Array<{ at: string; reasons: string[]; comment: string }>;
}

export interface FeedbackReport {
  from: string;
  to: string;
  articles: ArticleFeedbackSummary[];
}

export async function feedbackReport(ctx: AppContext, query: HelpFeedbackQuery): Promise<FeedbackReport> {
  const rows = await createHelpFeedbackRepository(ctx.store.database.db).list(query);
  const byArticle = new Map<string, ArticleFeedbackSummary>();
  for (const row of rows) {
    let summary = byArticle.get(row.article);
    if (!summary) {
      summary = { article: row.article, helpful: 0, notHelpful: 0, reasons: Object.fromEntries(FEEDBACK_REASONS.map((r) => [r.id, 0])), comments: [] };
      byArticle.set(row.article, summary);
    }
    if (row.helpful) summary.helpful++;
    else summary.notHelpful++;
    for (const reason of row.reasons) summary.reasons[reason] = (summary.reasons[reason] ?? 0) + 1;
    if (row.comment) summary.comments.push({ at: row.createdAt.toISOString(), reasons: row.reasons, comment: row.comment });
  }
  return {
    from: query.from.toISOString(),
    to: query.to.toISOString(),
    articles: [...byArticle.values()].sort((a, b) => a.article.localeCompare(b.article)),
  };
}

export const FEEDBACK_CSV_HEADER = ['article', 'helpful', 'not_helpful', ...FEEDBACK_REASONS.map((r) => r.id), 'comments'] as const;

/** One line per article; comments joined by " | " (each guarded against spreadsheet formulas). */
export function feedbackCsv(report: FeedbackReport): string {
  const lines = [FEEDBACK_CSV_HEADER.join(',')];
  for (const a of report.articles) {
    lines.push(
      [a.article, String(a.helpful), String(a.notHelpful), ...FEEDBACK_REASONS.map((r) => String(a.reasons[r.id] ?? 0)), a.comments.map((c) => c.comment.replace(/\s+/g, ' ')).join(' | ')]
        .map(csvCell)
        .join(','),
    );
  }
  return lines.join('\r\n') + '\r\n';
}
