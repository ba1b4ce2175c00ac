/**
 * Answers to "Was this article helpful?": written once, read by the report.
 */
import type { Kysely } from 'kysely';
import type { DatabaseSchema, HelpFeedbackRow } from '../schema.js';

export interface NewHelpFeedback {
  id: string;
  article: string;
  helpful: boolean;
  reasons: readonly string[];
  comment: string;
  createdAt: Date;
}

export interface HelpFeedbackQuery {
  from: Date;
  to: Date;
  article?: string | undefined;
}

export interface HelpFeedbackRecord {
  id: string;
  article: string;
  helpful: boolean;
  reasons: string[];
  comment: string;
  createdAt: Date;
}

function toRecord(row: HelpFeedbackRow): HelpFeedbackRecord {
  const parsed: unknown = JSON.parse(row.reasons);
  return {
    id: row.id,
    article: row.article,
    helpful: row.helpful === 1,
    reasons: Array.isArray(parsed) ? parsed.filter((r): r is string => typeof r === 'string') : [],
    comment: row.comment,
    createdAt: new Date(row.created_at),
  };
}

export function createHelpFeedbackRepository(db: Kysely<DatabaseSchema>) {
  return {
    async insert(feedback: NewHelpFeedback): Promise<void> {
      await db
        .insertInto('help_feedback')
        .values({
          id: feedback.id,
          article: feedback.article,
          helpful: feedback.helpful ? 1 : 0,
          reasons: JSON.stringify(feedback.reasons),
          comment: feedback.comment,
          created_at: feedback.createdAt.toISOString(),
        })
        .execute();
    },

    /** Answers given in [from, to), oldest first. */
    async list(query: HelpFeedbackQuery): Promise<HelpFeedbackRecord[]> {
      let select = db
        .selectFrom('help_feedback')
        .selectAll()
        .where('created_at', '>=', query.from.toISOString())
        .where('created_at', '<', query.to.toISOString());
      if (query.article !== undefined) select = select.where('article', '=', query.article);
      const rows = await select.orderBy('created_at').orderBy('id').execute();
      return rows.map(toRecord);
    },

    async count(): Promise<number> {
      const row = await db.selectFrom('help_feedback').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}

export type HelpFeedbackRepository = ReturnType<typeof createHelpFeedbackRepository>;
