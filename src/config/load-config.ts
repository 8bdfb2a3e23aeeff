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
  ONAIR_LOG_LEVEL: 'log.level',
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
    throw new OnairError('ONAIR_CONFIG_INVALID', `not valid YAML: ${first.message.split('\n')[0]}`, { where });
  }
  const raw: unknown = document.toJS() ?? {};
  return resolveConfig(raw, environment);
}

export function resolveConfig(raw: unknown, environment: NodeJS.ProcessEnv = {}): OnairConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new OnairError('ONAIR_CONFIG_INVALID', 'expected a mapping with store, origin, hls and channels', { where: '(root)' });
  }
  const withEnvironment = applyEnvironment(structuredClone(raw) as Record<string, unknown>, environment);
  const result = configSchema.safeParse(withEnvironment);
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
  const lines = error.issues.map(describeIssue);
  const [first, ...rest] = lines;
  const more = rest.length > 0 ? `\n${rest.map((line) => `  also ${line}`).join('\n')}` : '';
  const firstIssue = error.issues[0]!;
  const where = formatPath(firstIssue.path, firstIssue);
  return new OnairError('ONAIR_CONFIG_INVALID', `${first!.slice(where.length + 2)}${more}`, { where });
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path, issue);
  if (issue.code === 'unrecognized_keys') return `${where}: unknown key`;
  if (issue.code === 'invalid_type' && issue.input === undefined) return `${where}: required`;
  return `${where}: ${issue.message}`;
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
