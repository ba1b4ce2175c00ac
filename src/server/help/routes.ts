/**
 * The help centre (docs/help.md): /help (the index, with search), /help/:slug (an article), and
 * "Was this article helpful?" — Yes is counted at once; No asks for reasons, an optional comment and
 * an ALTCHA proof of work, then says "Feedback sent". Signed in or not, the same. Routes parse, call
 * the use case in src/app/help/, and render.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../../app/context.js';
import { fillPlaceholders, loadArticles, searchArticles, type HelpArticle } from '../../app/help/articles.js';
import { createCaptchaChallenge } from '../../app/help/captcha.js';
import { FeedbackRefused, recordHelpful, recordNotHelpful, type FeedbackProblem } from '../../app/help/feedback.js';
import { COMMENT_MAX_LENGTH, FEEDBACK_REASONS } from '../../app/help/reasons.js';
import { currentPolicy } from '../../app/policy.js';
import { formatErrorMessage } from '../../core/errors.js';
import { field, formError } from '../forms.js';

function list(body: unknown, name: string): string[] {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  if (typeof value === 'string') return [value];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function formatUpdated(day: string): string {
  return new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' }).format(new Date(`${day}T00:00:00Z`));
}

export async function helpRoutes(app: FastifyInstance, { ctx }: { ctx: AppContext }): Promise<void> {
  const articles = loadArticles();
  const ordered = [...articles.values()].sort((a, b) => a.order - b.order || a.title.localeCompare(b.title));

  const find = (request: FastifyRequest): HelpArticle | undefined => articles.get((request.params as { slug: string }).slug);

  const renderImprove = (reply: FastifyReply, article: HelpArticle, values: { reasons: string[]; comment: string }, problems: FeedbackProblem[], status = 200) => {
    const errors = problems.map((p) => ({ text: formatErrorMessage(p.code, { max: COMMENT_MAX_LENGTH }), ...(p.field === 'captcha' ? {} : { href: `#${p.field}` }) }));
    const fieldErrors = Object.fromEntries(problems.map((p) => [p.field, formatErrorMessage(p.code, { max: COMMENT_MAX_LENGTH })]));
    return reply.render(
      'help/improve.njk',
      {
        article: { slug: article.slug, title: article.title },
        reasons: FEEDBACK_REASONS.map((r) => ({ value: r.id, text: r.text, checked: values.reasons.includes(r.id) })),
        comment: values.comment,
        commentMax: COMMENT_MAX_LENGTH,
        errors,
        fieldErrors,
        backHref: `/help/${article.slug}`,
      },
      status,
    );
  };

  app.get('/help', async (request, reply) => {
    const q = typeof (request.query as { q?: unknown }).q === 'string' ? (request.query as { q: string }).q.slice(0, 200) : '';
    const results = q.trim() ? searchArticles(ordered, q).map((r) => r.article) : null;
    const view = (a: HelpArticle) => ({ slug: a.slug, title: a.title, summary: a.summary });
    return reply.render('help/index.njk', { q, results: results?.map(view) ?? null, articles: ordered.map(view) });
  });

  // The widget fetches its challenge here (JSON, never cached: each is for one use).
  app.get('/help/captcha-challenge', { config: { surface: 'api' } }, async (_request, reply) => {
    return reply.header('cache-control', 'no-store').send(await createCaptchaChallenge(ctx));
  });

  app.get('/help/:slug', async (request, reply) => {
    const article = find(request);
    if (!article) return reply.callNotFound();
    const { policy } = await currentPolicy(ctx);
    const thanks = (request.query as { feedback?: unknown }).feedback === 'thanks';
    return reply.render('help/article.njk', {
      article: { slug: article.slug, title: article.title, summary: article.summary, updated: formatUpdated(article.updated), headings: article.headings },
      bodyHtml: fillPlaceholders(article.html, policy),
      thanks,
      backHref: '/help',
    });
  });

  app.post('/help/:slug/feedback', async (request, reply) => {
    const article = find(request);
    if (!article) return reply.callNotFound();
    const answer = field(request.body, 'helpful');
    if (answer === 'no') return reply.redirect(`/help/${article.slug}/improve`, 303);
    if (answer !== 'yes') {
      const { policy } = await currentPolicy(ctx);
      return reply.render(
        'help/article.njk',
        {
          article: { slug: article.slug, title: article.title, summary: article.summary, updated: formatUpdated(article.updated), headings: article.headings },
          bodyHtml: fillPlaceholders(article.html, policy),
          backHref: '/help',
          ...formError({ code: 'feedback-answer-missing', field: 'helpful' }),
        },
        400,
      );
    }
    await recordHelpful(ctx, article.slug, request.ip);
    return reply.redirect(`/help/${article.slug}?feedback=thanks#feedback`, 303);
  });

  app.get('/help/:slug/improve', async (request, reply) => {
    const article = find(request);
    if (!article) return reply.callNotFound();
    return renderImprove(reply, article, { reasons: [], comment: '' }, []);
  });

  app.post('/help/:slug/improve', async (request, reply) => {
    const article = find(request);
    if (!article) return reply.callNotFound();
    const values = { reasons: list(request.body, 'reasons'), comment: field(request.body, 'comment') };
    try {
      await recordNotHelpful(ctx, article.slug, request.ip, { ...values, captcha: field(request.body, 'altcha') });
    } catch (error) {
      if (!(error instanceof FeedbackRefused)) throw error;
      // A forged reason is not shown back as ticked; nothing was stored.
      return renderImprove(reply, article, { reasons: values.reasons, comment: values.comment.slice(0, COMMENT_MAX_LENGTH * 2) }, error.problems, 400);
    }
    return reply.redirect(`/help/${article.slug}/feedback-sent`, 303);
  });

  app.get('/help/:slug/feedback-sent', async (request, reply) => {
    const article = find(request);
    if (!article) return reply.callNotFound();
    return reply.render('help/sent.njk', { article: { slug: article.slug, title: article.title } });
  });
}
