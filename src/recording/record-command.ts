/**
 * `onair record list | stitch <session> | rm <session> --config f [--channel ch]`: the
 * recorded sessions of the configured channels, from the store and `recordings.dir` (with
 * the embedded store, from the disk alone: see recording-catalog.ts).
 *   list     one line per session: channel, session, state, trigger, duration, size, file
 *   stitch   (re)builds the session's file in the foreground, printing progress, checks it
 *            and announces it (events stream, webhook); exit 1 when it fails
 *   rm       deletes the session's segments, index, file and record; refused while recording
 */
import type { Logger } from 'pino';
import { isOnairError } from '../errors.js';
import { createLogger } from '../logging/create-logger.js';
import type { OnairConfig } from '../config/config-schema.js';
import { createStore } from '../store/create-store.js';
import type { Store } from '../store/store.js';
import { RecordingCatalog } from './recording-catalog.js';
import { RecordingFiles } from './recording-files.js';
import { recordingJobsFor } from './recording-jobs.js';
import { isSessionId, type RecordingRecord } from './recording-record.js';
import { s3StorageFor } from './s3-storage.js';

export const RECORD_USAGE = 'record list | record stitch <session> | record rm <session>   [--channel <id>]';

export interface RecordCommandOutput {
  out(line: string): void;
  err(line: string): void;
}

export async function runRecordCommand(
  config: OnairConfig,
  args: { action: string | undefined; session: string | undefined; channel: string | undefined },
  output: RecordCommandOutput,
): Promise<number> {
  const { action, session, channel } = args;
  if (action !== 'list' && action !== 'stitch' && action !== 'rm') return refuse(output, `expected ${RECORD_USAGE}`);
  if (action !== 'list' && (session === undefined || !isSessionId(session))) {
    return refuse(output, `${action}: expected a session id like 20261121T231500Z (see onair record list)`);
  }
  const channels = channel === undefined ? config.channels.map((candidate) => candidate.id) : [channel];
  if (channel !== undefined && !config.channels.some((candidate) => candidate.id === channel)) return refuse(output, `no channel "${channel}" in the config`);

  // Warnings and errors only: the command prints its own progress.
  const logger: Logger = createLogger({ level: config.log.level === 'silent' ? 'silent' : 'warn' });
  const store: Store = createStore(config.store, logger, { allowEvictingPolicy: config.redis.allowEvictingPolicy });
  await store.start();
  const objects = s3StorageFor(config);
  try {
    const catalog = new RecordingCatalog({ store, files: new RecordingFiles(config.recordings.dir), ...(objects ? { objects } : {}) });
    for (const id of channels) await catalog.adoptFromDisk(id);
    if (action === 'list') {
      await list(catalog, channels, output);
      return 0;
    }
    const owners: string[] = [];
    for (const id of channels) if (await catalog.get(id, session!)) owners.push(id);
    if (owners.length === 0) return refuse(output, `no recorded session ${session}${channel ? ` of channel ${channel}` : ''}`);
    if (owners.length > 1) return refuse(output, `channels ${owners.join(', ')} each have a session ${session}: choose one with --channel`);
    const owner = owners[0]!;
    if (action === 'rm') {
      await catalog.remove(owner, session!);
      output.out(`removed ${owner}/${session}`);
      return 0;
    }
    const jobs = recordingJobsFor(config, catalog, store, logger);
    const record = await jobs.run(owner, session!, { restitch: true, onProgress: (percent) => output.out(`stitching ${owner}/${session}: ${percent} %`) });
    if (record.state !== 'done') return refuse(output, `${owner}/${session} could not be stitched: ${record.error ?? record.state}`);
    const webhook = record.webhook ? (record.webhook.delivered ? `webhook delivered (${record.webhook.attempts} attempt(s))` : `webhook failed: ${record.webhook.error}`) : 'no webhook';
    output.out(`${owner}/${session}: ${formatSeconds(record.durationSeconds)}, ${formatBytes(record.sizeBytes)}, ${catalog.files.filePath(owner, session!)}; event ${record.eventId}; ${webhook}`);
    return 0;
  } catch (error) {
    if (isOnairError(error)) return refuse(output, error.message);
    throw error;
  } finally {
    objects?.close();
    await store.close();
  }
}

async function list(catalog: RecordingCatalog, channels: string[], output: RecordCommandOutput): Promise<void> {
  const rows: string[][] = [['CHANNEL', 'SESSION', 'STATE', 'TRIGGER', 'DURATION', 'SIZE', 'FILE']];
  for (const channel of channels) {
    for (const record of await catalog.list(channel)) rows.push(row(catalog, record));
  }
  if (rows.length === 1) {
    output.out('no recorded sessions');
    return;
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((cells) => cells[column]!.length)));
  for (const cells of rows) output.out(cells.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd());
}

function row(catalog: RecordingCatalog, record: RecordingRecord): string[] {
  const stitched = record.state === 'stitched' || record.state === 'done';
  return [
    record.channel,
    record.session,
    record.state === 'failed' ? `failed: ${record.error ?? ''}` : record.state,
    record.trigger,
    formatSeconds(record.durationSeconds ?? record.segmentsSeconds),
    formatBytes(record.sizeBytes),
    stitched ? catalog.files.filePath(record.channel, record.session) : '-',
  ];
}

function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  const whole = Math.floor(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = (seconds - hours * 3600 - minutes * 60).toFixed(3).padStart(6, '0');
  return `${hours}:${String(minutes).padStart(2, '0')}:${rest}`;
}

function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return '-';
  return bytes >= 1_000_000 ? `${(bytes / 1_000_000).toFixed(1)} MB` : `${(bytes / 1000).toFixed(1)} kB`;
}

function refuse(output: RecordCommandOutput, message: string): number {
  output.err(`onair record: ${message}`);
  return 1;
}
