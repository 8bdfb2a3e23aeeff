/**
 * Config loading: defaults → file (YAML or JSON) → environment → validate → freeze.
 * Every error is an OnairError whose message starts with the key path it is about,
 * e.g. `channels[0].renditions[1].bitrate: expected a bitrate like 96k`.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { z } from 'zod';
import { OnairError } from '../errors.js';
import { configSchema, type OnairConfig } from './config-schema.js';

/** Environment variables that override a file's values (handy in containers). */
export const ENVIRONMENT_OVERRIDES = {
  ONAIR_STORE: 'store',
  ONAIR_ORIGIN_HOST: 'origin.host',
  ONAIR_ORIGIN_PORT: 'origin.port',
  ONAIR_ADMIN_HOST: 'admin.host',
  ONAIR_ADMIN_PORT: 'admin.port',
  ONAIR_LOG_LEVEL: 'log.level',
  ONAIR_SIGNING_KEY: 'signing.key',
  ONAIR_API_TOKENS: 'api.tokens',
  ONAIR_LISTENER_INGEST_TOKENS: 'listeners.ingestTokens',
  ONAIR_RECORDINGS_DIR: 'recordings.dir',
  ONAIR_RECORDINGS_PUBLIC_URL: 'recordings.publicUrl',
  ONAIR_RECORDINGS_WEBHOOK_URL: 'recordings.webhook.url',
  ONAIR_RECORDINGS_WEBHOOK_SECRET: 'recordings.webhook.secret',
} as const;

export async function loadConfigFile(path: string, environment: NodeJS.ProcessEnv = process.env): Promise<OnairConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new OnairError('ONAIR_CONFIG_UNREADABLE', `cannot read config file (${(error as NodeJS.ErrnoException).code ?? 'error'})`, {
      where: path,
      cause: error,
    });
  }
  return parseConfigText(text, environment, path);
}

/** The YAML parser is loaded on first use: processes that only resolve objects never pay for it. */
const requireYaml = (): typeof import('yaml') => createRequire(import.meta.url)('yaml') as typeof import('yaml');

export function parseConfigText(text: string, environment: NodeJS.ProcessEnv = {}, source = 'config'): OnairConfig {
  const document = requireYaml().parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    const line = first.linePos?.[0];
    const where = line ? `${source}:${line.line}:${line.col}` : source;
    // The first line of a pretty error ends with its position, which `where` already gives.
    const reason = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new OnairError('ONAIR_CONFIG_INVALID', `not valid YAML: ${reason}`, { where });
  }
  let raw: unknown;
  try {
    raw = document.toJS() ?? {};
  } catch (error) {
    // Aliases are resolved here, not while parsing: an alias to an undefined anchor, or an
    // alias bomb (more than 100 expansions), throws a ReferenceError.
    throw new OnairError('ONAIR_CONFIG_INVALID', `not valid YAML: ${(error as Error).message}`, { where: source, cause: error });
  }
  return resolveConfig(raw, environment);
}

export function resolveConfig(raw: unknown, environment: NodeJS.ProcessEnv = {}): OnairConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected a mapping with store, origin, hls and channels', { where: '(root)' });
  }
  const withEnvironment = applyEnvironment(structuredClone(raw) as Record<string, unknown>, environment);
  // reportInput: an issue then carries the value it is about, so a missing key and a value
  // of the wrong type can be told apart (describeIssue).
  const result = configSchema.safeParse(withEnvironment, { reportInput: true });
  if (!result.success) throw configError(result.error);
  return deepFreeze(result.data);
}

function applyEnvironment(config: Record<string, unknown>, environment: NodeJS.ProcessEnv): Record<string, unknown> {
  for (const [variable, keyPath] of Object.entries(ENVIRONMENT_OVERRIDES)) {
    const value = environment[variable];
    if (value === undefined || value === '') continue;
    const keys = keyPath.split('.');
    let target = config;
    for (const key of keys.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== 'object' || next === null) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    const leaf = keys[keys.length - 1]!;
    target[leaf] = leaf === 'port' && /^\d+$/.test(value) ? Number(value) : value;
  }
  return config;
}

function configError(error: z.ZodError): OnairError {
  // One mistake can fail two checks with the same message (e.g. an integer that is also too big).
  const lines = [...new Set(error.issues.map(describeIssue))];
  const [first, ...rest] = lines;
  const more = rest.length > 0 ? `\n${rest.map((line) => `  also ${line}`).join('\n')}` : '';
  const firstIssue = error.issues[0]!;
  const where = formatPath(firstIssue.path, firstIssue);
  return new OnairError('ONAIR_CONFIG_INVALID', `${first!.slice(where.length + 2)}${more}`, { where });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path, issue);
  if (issue.code === 'unrecognized_keys') return `${where}: unknown key`;
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined) return `${where}: required`;
    // A YAML value can look right and still be text (`port: "8080"`): say what was found.
    if (!/\breceived\b/.test(issue.message)) return `${where}: ${issue.message} (got ${describeValue(issue.input)})`;
  }
  return `${where}: ${issue.message}`;
}

/** `"8080"` → `the text "8080"`, `6.5` → `6.5`, `[…]` → `a list`: short, for error messages. */
function describeValue(value: unknown): string {
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Uint8Array) return 'binary data';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

/** `['channels', 0, 'renditions', 1, 'bitrate']` → `channels[0].renditions[1].bitrate`. */
function formatPath(path: readonly PropertyKey[], issue: z.core.$ZodIssue): string {
  const keys: PropertyKey[] = [...path];
  if (issue.code === 'unrecognized_keys') keys.push(issue.keys[0]!);
  let text = '';
  for (const key of keys) {
    if (typeof key === 'number') text += `[${key}]`;
    else text += text === '' ? String(key) : `.${String(key)}`;
  }
  return text === '' ? '(root)' : text;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
