/**
 * A JSON-answering HTTP API called with `fetch`, with its failures mapped to DeliveryErrors: network
 * errors and timeouts are retryable; statuses as `deliveryErrorForStatus` says.
 */
import { DeliveryError, deliveryErrorForStatus } from '../errors.js';

export interface ApiResponse {
  status: number;
  body: unknown;
}

export async function callApi(url: string, init: RequestInit & { timeoutMs: number }): Promise<ApiResponse> {
  const { timeoutMs, ...request } = init;
  let response: Response;
  try {
    response = await fetch(url, { ...request, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    if ((error as Error).name === 'TimeoutError') throw new DeliveryError('provider-timeout');
    // fetch failed: refused, reset, DNS, TLS. The cause's code (ECONNREFUSED …) is safe to record.
    const cause = (error as { cause?: { code?: unknown } }).cause;
    throw new DeliveryError('provider-unavailable', { detail: typeof cause?.code === 'string' ? cause.code : 'network error' });
  }
  const text = await response.text().catch(() => '');
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  return { status: response.status, body };
}

/** Throws the DeliveryError for a non-2xx answer, with `detail` built from its body by the caller. */
export function checkStatus(response: ApiResponse, detail: (body: unknown) => string | undefined): void {
  if (response.status >= 200 && response.status < 300) return;
  throw deliveryErrorForStatus(response.status, detail(response.body));
}
