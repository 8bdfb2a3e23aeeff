/**
 * Delivers one webhook: a JSON POST, retried with exponential backoff (1 s, 2 s, 4 s … capped)
 * until the receiver answers 2xx, a bounded number of times. Network errors, timeouts, 5xx,
 * 408 and 429 are retried; any other 4xx is final (the receiver refuses this request).
 *
 * Headers: `X-Onair-Event` (the event type), `X-Onair-Delivery` (the same on every attempt
 * and after a restart, for the receiver to drop duplicates), and with a secret
 * `X-Onair-Signature: sha256=<hex HMAC-SHA256 of the body>`.
 */
import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { WebhookOutcome } from './recording-record.js';

export interface WebhookTarget {
  url: string;
  secret?: string;
}

export interface WebhookRetry {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Bound on one attempt. */
  timeoutMs: number;
}

/** 8 attempts over about two minutes. */
export const DEFAULT_WEBHOOK_RETRY: WebhookRetry = { attempts: 8, baseDelayMs: 1000, maxDelayMs: 60_000, timeoutMs: 10_000 };

export interface WebhookDelivery {
  event: string;
  /** Stable id of this delivery. */
  deliveryId: string;
  payload: unknown;
}

/** Delay before attempt `attempt + 1` (attempt ≥ 1). */
export function retryDelayMs(retry: WebhookRetry, attempt: number): number {
  return Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** (attempt - 1));
}

/** HMAC-SHA256 of the body, as the `X-Onair-Signature` header carries it. */
export function webhookSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Delivers `delivery` to `target`; resolves with the outcome (never rejects for a receiver's
 * failure). Rejects only when `signal` aborts (a shutdown: the caller retries later).
 */
export async function deliverWebhook(
  target: WebhookTarget,
  delivery: WebhookDelivery,
  options: { retry?: WebhookRetry; signal?: AbortSignal; logger?: Logger } = {},
): Promise<WebhookOutcome> {
  const retry = options.retry ?? DEFAULT_WEBHOOK_RETRY;
  const body = JSON.stringify(delivery.payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'onair',
    'x-onair-event': delivery.event,
    'x-onair-delivery': delivery.deliveryId,
  };
  if (target.secret) headers['x-onair-signature'] = webhookSignature(target.secret, body);
  let lastError = '';
  for (let attempt = 1; attempt <= retry.attempts; attempt++) {
    options.signal?.throwIfAborted();
    const verdict = await attemptOnce(target.url, headers, body, retry.timeoutMs, options.signal);
    if (verdict.kind === 'delivered') return { delivered: true, attempts: attempt };
    lastError = verdict.reason;
    options.logger?.warn({ url: target.url, attempt, reason: verdict.reason }, 'webhook delivery failed');
    if (verdict.kind === 'refused' || attempt === retry.attempts) return { delivered: false, attempts: attempt, error: lastError };
    await sleep(retryDelayMs(retry, attempt), undefined, { signal: options.signal });
  }
  return { delivered: false, attempts: retry.attempts, error: lastError };
}

type AttemptVerdict = { kind: 'delivered' } | { kind: 'retry'; reason: string } | { kind: 'refused'; reason: string };

async function attemptOnce(url: string, headers: Record<string, string>, body: string, timeoutMs: number, signal?: AbortSignal): Promise<AttemptVerdict> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout, redirect: 'error' });
    await response.body?.cancel();
    if (response.ok) return { kind: 'delivered' };
    const reason = `HTTP ${response.status}`;
    const retriable = response.status >= 500 || response.status === 408 || response.status === 429;
    return retriable ? { kind: 'retry', reason } : { kind: 'refused', reason };
  } catch (error) {
    signal?.throwIfAborted();
    return { kind: 'retry', reason: error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error) };
  }
}
