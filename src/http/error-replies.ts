/**
 * Maps failures to HTTP for the origin, the recordings and the control API
 * (docs/architecture.md, Errors): a bad request gets a 4xx with a short JSON body
 * `{"error":"not_found","message":"..."}`; a miss is cacheable for one second at most (never
 * pin a miss in a CDN); 5xx only for a real fault, and 503 + Retry-After while the store is
 * unreachable.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERRORS, isOnairError, type OnairError } from '../errors.js';
import { redactUrl } from '../logging/redact.js';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
/** Seconds a client or CDN should wait before asking again after a 503. */
export const RETRY_AFTER_SECONDS = 1;

// Headers that describe a successful representation and must not leak onto an error.
const REPRESENTATION_HEADERS = ['etag', 'content-encoding', 'content-range', 'accept-ranges', 'vary'];

export interface ErrorDetails {
  /** Overrides the code derived from the status, e.g. `store_unavailable`. */
  error?: string;
  headers?: Record<string, string>;
}

export function sendError(reply: FastifyReply, statusCode: number, message: string, details: ErrorDetails = {}): FastifyReply {
  for (const header of REPRESENTATION_HEADERS) reply.removeHeader(header);
  reply
    .code(statusCode)
    .header('content-type', JSON_CONTENT_TYPE)
    // A fault, or a refusal about one client (429): never shared by a cache.
    .header('cache-control', statusCode >= 500 || statusCode === 429 ? 'no-store' : 'public, max-age=1');
  if (statusCode === 503) reply.header('retry-after', String(RETRY_AFTER_SECONDS));
  if (details.headers) reply.headers(details.headers);
  return reply.send(JSON.stringify({ error: details.error ?? errorName(statusCode), message }));
}

/** `404` → `not_found`, `416` → `range_not_satisfiable`: stable codes clients can branch on. */
function errorName(statusCode: number): string {
  const reason = STATUS_CODES[statusCode] ?? 'error';
  return reason.toLowerCase().replace(/[^a-z0-9]+/g, '_');
}

/**
 * Answers a domain error through the error table (src/errors.ts): its status and its reply
 * name. A server-side fault (5xx) keeps its message in the log, not in the reply.
 */
export function sendOnairError(reply: FastifyReply, error: OnairError): FastifyReply {
  const { status, reply: name } = ERRORS[error.code];
  const message = error.code === 'ONAIR_STORE_UNAVAILABLE' ? 'the store is unavailable, retry shortly' : status >= 500 && status !== 503 ? 'internal error' : error.message;
  return sendError(reply, status, message, { error: name });
}

export function originErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (isOnairError(error)) {
    // Logged URLs carry no token (signed channels) nor other credential; the logger also
    // rate-limits the line per cause while the store stays down (src/logging/create-logger.ts).
    if (error.code === 'ONAIR_STORE_UNAVAILABLE') request.log.warn({ err: error, url: redactUrl(request.url) }, 'store unavailable');
    // ONAIR_ORIGIN_BUSY (under-pressure) is not logged: a line per refused request would add to the load.
    else if (error.statusCode >= 500 && error.code !== 'ONAIR_ORIGIN_BUSY') request.log.error({ err: error, url: redactUrl(request.url) }, 'origin request failed');
    return sendOnairError(reply, error);
  }
  if (error.validation) return sendError(reply, 400, error.message);
  const statusCode = error.statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return sendError(reply, statusCode, error.message);
  }
  request.log.error({ err: error, url: redactUrl(request.url) }, 'origin request failed');
  return sendError(reply, 500, 'internal error');
}

/**
 * For Fastify's `frameworkErrors` option: errors raised before routing (bad percent-encoding,
 * a parameter longer than maxParamLength). They skip hooks, so CORS is added here.
 */
export function originFrameworkErrorHandler(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header('access-control-allow-origin', '*');
  const statusCode = error.statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    sendError(reply, statusCode, error.message);
    return;
  }
  request.log.error({ err: error, url: redactUrl(request.url) }, 'origin routing failed');
  sendError(reply, 500, 'internal error');
}
