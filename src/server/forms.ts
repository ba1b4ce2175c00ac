import { formatErrorMessage, type ErrorCode, type ErrorParams } from '../core/errors.js';

export interface FormErrorView {
  errors: Array<{ text: string; href?: string }>;
  fieldErrors: Record<string, string>;
}

/** The error summary and inline messages for one error (NHS.UK error summary pattern). */
export function formError(error: { code: ErrorCode; params?: ErrorParams; field?: string | undefined }): FormErrorView {
  const text = formatErrorMessage(error.code, error.params);
  return {
    errors: [error.field ? { text, href: `#${error.field}` } : { text }],
    fieldErrors: error.field ? { [error.field]: text } : {},
  };
}

/** A string field from a parsed form body, or '' when absent or not a string. */
export function field(body: unknown, name: string): string {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof value === 'string' ? value : '';
}
