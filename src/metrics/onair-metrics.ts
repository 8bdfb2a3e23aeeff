/**
 * The process's Prometheus metrics (prom-client), one registry per process so that tests
 * can run several. Most values already live in the components' own stats objects and are
 * read at scrape time (collect callbacks): nothing is counted twice and the hot paths pay
 * nothing. Only what needs one observation per event (latencies, request counts) is
 * recorded as it happens. Names follow Prometheus conventions (`_total`, `_seconds`,
 * base units); README "Metrics" lists them.
 */
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PackagerStats, SegmentTiming } from '../hls/channel-packager.js';
import type { InputStats } from '../ingest/input-worker.js';
import type { ListenerCounts, ListenersControl } from '../origin/listeners-plugin.js';
import type { OriginControl } from '../origin/origin-plugin.js';
import type { MountsControl } from '../origin/progressive/mounts-plugin.js';
import type { ChannelPipeline } from '../pipeline/channel-pipeline.js';
import type { IngestService } from '../pipeline/ingest-service.js';
import type { RecordingJobs } from '../recording/recording-jobs.js';
import type { RecordingRetention } from '../recording/recording-retention.js';
import { RequestMetrics } from './request-metrics.js';

/** Latency buckets from half a millisecond (a memory hit) to 10 s (a held LL-HLS request). */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class OnairMetrics {
  readonly registry = new Registry();

  /** onair_http_requests_total and onair_http_request_duration_seconds, one count per origin answer. */
  readonly requests = new RequestMetrics(this.registry, LATENCY_BUCKETS);

  readonly storeDuration = new Histogram({
    name: 'onair_store_operation_duration_seconds',
    help: 'Store calls by operation, successful or not',
    labelNames: ['operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly storeErrors = new Counter({
    name: 'onair_store_errors_total',
    help: 'Store calls that failed, by operation',
    labelNames: ['operation'] as const,
    registers: [this.registry],
  });

  readonly storeUp = new Gauge({
    name: 'onair_store_up',
    help: '1 when the last store call succeeded, 0 when it failed',
    registers: [this.registry],
  });

  readonly segmentPublishDelay = new Histogram({
    name: 'onair_segment_publish_delay_seconds',
    help: "From a segment's last frame reaching the packager to its playlist being published",
    labelNames: ['channel'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  readonly unhandledRejections = new Counter({
    name: 'onair_unhandled_rejections_total',
    help: 'Promise rejections nothing handled (logged with ONAIR_UNHANDLED_REJECTION; the process goes on)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names like counters: `promtool check metrics` rejects them.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) {
      this.registry.removeSingleMetric(name);
    }
  }

  /**
   * In a worker of `onair origin --workers`: answer the primary's AggregatorRegistry with this
   * registry (docs/architecture.md, "The origin on every core"). Counters and per-process
   * gauges are summed there; gauges read from the shared store take the max (`aggregator`).
   */
  answerClusterPrimary(): void {
    AggregatorRegistry.setRegistries([this.registry]);
    // The constructor adds the worker's listener for the primary's requests.
    new AggregatorRegistry();
  }

  /** Called around every store call (see instrumented-store.ts). */
  observeStoreCall(operation: string, seconds: number, failed: boolean): void {
    this.storeDuration.observe({ operation }, seconds);
    if (failed) this.storeErrors.inc({ operation });
    this.storeUp.set(failed ? 0 : 1);
  }

  /** Ingest: inputs, switches, encoders and packagers, read from their stats at scrape time. */
  watchIngest(ingest: IngestService): void {
    const channels = (): IngestService['channels'] => ingest.channels;
    const registers = [this.registry];
    const observePublishDelay = (channel: ChannelPipeline): void => {
      channel.packager.on('segment', (_entry: unknown, timing: SegmentTiming) =>
        this.segmentPublishDelay.observe({ channel: channel.packager.channelId }, timing.publishDelayMs / 1000),
      );
    };
    for (const channel of ingest.channels.values()) observePublishDelay(channel);
    ingest.on('channel', observePublishDelay);
    const bitrate = new InputBitrate();
    ingest.on('channel-removed', (channel: string) => {
      this.segmentPublishDelay.remove({ channel });
      bitrate.forgetChannel(channel);
    });

    new Gauge({
      name: 'onair_input_up',
      help: 'Input healthy (encoder running, audio within inputTimeoutMs, not silent)',
      labelNames: ['channel', 'input'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          for (const input of channel.inputStates().inputs) this.set({ channel: id, input: input.id }, input.healthy ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'onair_input_active',
      help: 'The source on air: 1 for the active input (or `fallback`, the safety source)',
      labelNames: ['channel', 'input'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          const { inputs, active } = channel.inputStates();
          for (const source of [...inputs.map((input) => input.id), 'fallback']) this.set({ channel: id, input: source }, source === active ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'onair_active_input_priority',
      help: 'Priority of the source on air: 0 for the first input, n for the (n+1)-th, the number of inputs for the safety source',
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          const { inputs, active } = channel.inputStates();
          if (active === undefined) continue;
          const index = inputs.findIndex((input) => input.id === active);
          this.set({ channel: id }, index === -1 ? inputs.length : index);
        }
      },
    });
    new Gauge({
      name: 'onair_target_duration_seconds',
      help: "The channel's EXT-X-TARGETDURATION (for alerts on late segments)",
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) this.set({ channel: id }, channel.packager.schedule.targetDuration());
      },
    });
    new Gauge({
      name: 'onair_input_silent',
      help: 'FFmpeg reports the feed as digital silence (channels with silenceSeconds)',
      labelNames: ['channel', 'input'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          for (const worker of channel.inputs) this.set({ channel: id, input: worker.inputId }, worker.silent ? 1 : 0);
        }
      },
    });
    new Gauge({
      name: 'onair_input_received_bytes_per_second',
      help: 'Encoded audio an input delivers (all renditions together, from its FFmpeg), since the previous scrape',
      labelNames: ['channel', 'input'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          for (const worker of channel.inputs) {
            this.set({ channel: id, input: worker.inputId }, bitrate.update(`${id}/${worker.inputId}`, worker.stats.bytesReceived));
          }
        }
      },
    });
    const inputCounter = (name: string, help: string, read: (stats: InputStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['channel', 'input'] as const,
        registers,
        collect() {
          this.reset();
          for (const [id, channel] of channels()) {
            for (const worker of channel.inputs) this.inc({ channel: id, input: worker.inputId }, read(worker.stats));
          }
        },
      });
    };
    inputCounter('onair_input_frames_total', 'AAC frame groups (one frame per rendition) an input delivered', (stats) => stats.frameGroups);
    inputCounter('onair_ffmpeg_restarts_total', 'FFmpeg restarts after an exit or a hang', (stats) => stats.encoderRestarts);
    inputCounter('onair_ffmpeg_hang_kills_total', 'FFmpeg processes killed by the start or stall watchdog', (stats) => stats.hangKills);
    inputCounter('onair_input_silence_detected_total', 'Times FFmpeg reported the feed went silent', (stats) => stats.silenceDetections);
    new Counter({
      name: 'onair_input_switches_total',
      help: 'Switches of the source on air, by reason',
      labelNames: ['channel', 'reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          for (const [reason, count] of channel.switches) this.inc({ channel: id, reason }, count);
        }
      },
    });

    const packagerCounter = (name: string, help: string, read: (stats: PackagerStats) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['channel'] as const,
        registers,
        collect() {
          this.reset();
          for (const [id, channel] of channels()) this.inc({ channel: id }, read(channel.packager.stats));
        },
      });
    };
    packagerCounter('onair_segments_produced_total', 'Segments cut (leader or standby)', (stats) => stats.segmentsProduced);
    packagerCounter('onair_segments_published_total', 'Segments published to the store by this process', (stats) => stats.segmentsPublished);
    packagerCounter('onair_segments_dropped_total', 'Segments dropped (store outage longer than the window, takeover)', (stats) => stats.segmentsDropped);
    packagerCounter('onair_parts_published_total', 'LL-HLS parts published ahead of their segment', (stats) => stats.partsPublished);
    packagerCounter('onair_packager_store_retries_total', 'Packager writes that failed and were retried', (stats) => stats.storeErrors);
    packagerCounter('onair_packager_fenced_writes_total', 'Writes refused because another packager holds the lease', (stats) => stats.fencedWrites);
    packagerCounter('onair_packager_promotions_total', 'Times this packager took the channel over', (stats) => stats.promotions);
    new Gauge({
      name: 'onair_packager_leader',
      help: '1 when this process writes the channel, 0 while it stands by',
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) this.set({ channel: id }, channel.packager.isLeading ? 1 : 0);
      },
    });
    new Gauge({
      name: 'onair_last_segment_age_seconds',
      help: 'Time since this process last published a segment of the channel (leaders only)',
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          const at = channel.packager.stats.lastPublishedAt;
          if (channel.packager.isLeading && at !== undefined) this.set({ channel: id }, (Date.now() - at) / 1000);
        }
      },
    });
    new Counter({
      name: 'onair_channel_restarts_total',
      help: "Restarts of a channel after its pipeline threw, by the stage that threw (parser, selector, packager)",
      labelNames: ['channel', 'stage'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, stages] of ingest.faults) for (const [stage, count] of stages) this.inc({ channel: id, stage }, count);
      },
    });
    /** A per-channel series read from each running channel at scrape time (none where `read` gives undefined). */
    const perChannel = (kind: 'gauge' | 'counter', name: string, help: string, read: (channel: ChannelPipeline) => number | undefined): void => {
      const values = (): [string, number][] =>
        [...channels()].flatMap(([id, channel]): [string, number][] => {
          const value = read(channel);
          return value === undefined ? [] : [[id, value]];
        });
      const options = { name, help, labelNames: ['channel'] as const, registers };
      if (kind === 'gauge') {
        new Gauge({
          ...options,
          collect() {
            this.reset();
            for (const [channel, value] of values()) this.set({ channel }, value);
          },
        });
      } else {
        new Counter({
          ...options,
          collect() {
            this.reset();
            for (const [channel, value] of values()) this.inc({ channel }, value);
          },
        });
      }
    };
    perChannel('gauge', 'onair_recording_active', '1 while a session of the channel is being recorded here', (channel) => channel.recorder && (channel.recorder.current ? 1 : 0));
    perChannel('gauge', 'onair_recording_disk_full', '1 while the recordings disk is full for the channel (recording waits for room)', (channel) => channel.recorder && (channel.recorder.diskFull ? 1 : 0));
    perChannel('counter', 'onair_recording_segments_written_total', 'Segments written to the recordings disk', (channel) => channel.recorder?.stats.segmentsWritten);
    perChannel('counter', 'onair_recording_write_errors_total', 'Segments that could not be recorded (disk or store errors)', (channel) => channel.recorder?.stats.writeErrors);
    perChannel('counter', 'onair_recording_disk_full_total', 'Times the recordings disk was found full', (channel) => channel.recorder?.stats.diskFullEvents);
    perChannel('counter', 'onair_recording_undecryptable_total', 'Encrypted segments recorded as a gap: their key was not in the store', (channel) => channel.recorder?.stats.undecryptable);
    perChannel('counter', 'onair_recording_mirror_sent_total', 'Files and index chunks the bucket confirmed (recordings.storage.s3.mirrorSegments)', (channel) => channel.recorder?.mirror?.stats.sent);
    perChannel('counter', 'onair_recording_mirror_failed_total', 'Files that could not be mirrored to the bucket after every try', (channel) => channel.recorder?.mirror?.stats.failed);
    perChannel('counter', 'onair_recording_mirror_dropped_total', 'Files not mirrored because the queue to the bucket was full', (channel) => channel.recorder?.mirror?.stats.dropped);
    new Gauge({
      name: 'onair_timeline_drift_seconds',
      help: 'Audio timeline minus wall clock since the first frame: an input running slow (−) or fast (+)',
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [id, channel] of channels()) {
          const drift = channel.packager.timelineDriftSeconds();
          if (drift !== undefined) this.set({ channel: id }, drift);
        }
      },
    });
  }

  /** Recordings: stitch jobs by outcome, silence stitched for lost segments, retention. */
  watchRecordings(jobs: RecordingJobs, retention: RecordingRetention): void {
    const registers = [this.registry];
    new Counter({
      name: 'onair_recording_jobs_total',
      help: 'Recording jobs ended, by outcome: done, failed, disk_full (queued again), fenced (another packager leads)',
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        this.reset();
        for (const [outcome, count] of Object.entries(jobs.stats.outcomes)) this.inc({ outcome }, count);
      },
    });
    new Counter({
      name: 'onair_recording_silence_seconds_total',
      help: 'Seconds of silence stitched in for segment files that were lost',
      registers,
      collect() {
        this.reset();
        this.inc(jobs.stats.silenceSeconds);
      },
    });
    new Gauge({
      name: 'onair_recordings_bytes',
      help: "Bytes of a channel's recordings on disk, at the last retention sweep",
      labelNames: ['channel'] as const,
      registers,
      collect() {
        this.reset();
        for (const [channel, bytes] of retention.stats.bytes) this.set({ channel }, bytes);
      },
    });
    new Counter({
      name: 'onair_recordings_removed_total',
      help: 'Sessions removed by retention, by reason (age, size)',
      labelNames: ['channel', 'reason'] as const,
      registers,
      collect() {
        this.reset();
        for (const [channel, counts] of retention.stats.removed) {
          this.inc({ channel, reason: 'age' }, counts.age);
          this.inc({ channel, reason: 'size' }, counts.size);
        }
      },
    });
  }

  /**
   * Listener counts (shared by every origin through the store; read at most once a second).
   * Two gauges, so that summing renditions never double-counts a listener who switched.
   */
  watchListeners(listeners: ListenersControl): void {
    const registers = [this.registry];
    const read = (): Promise<ListenerCounts | null> => listeners.counts().catch(() => null);
    new Gauge({
      name: 'onair_listeners',
      help: 'Distinct listeners of a channel (each once, whatever rendition) over the last 1–2 target durations',
      labelNames: ['channel'] as const,
      registers,
      // Read from the store, so every worker of a cluster reports the same count: not a sum.
      aggregator: 'max',
      async collect() {
        this.reset();
        const counts = await read();
        for (const [channel, { total }] of Object.entries(counts?.channels ?? {})) this.set({ channel }, total);
      },
    });
    new Gauge({
      name: 'onair_rendition_listeners',
      help: 'Distinct listeners of a rendition (one who switched counts in both)',
      labelNames: ['channel', 'rendition'] as const,
      registers,
      aggregator: 'max',
      async collect() {
        this.reset();
        const counts = await read();
        for (const [channel, { renditions }] of Object.entries(counts?.channels ?? {})) {
          for (const [rendition, count] of Object.entries(renditions)) this.set({ channel, rendition }, count);
        }
      },
    });
  }

  /** Origin: memory-cache hits and misses and held LL-HLS requests, read at scrape time. */
  watchOrigin(origin: OriginControl): void {
    const registers = [this.registry];
    new Counter({
      name: 'onair_origin_cache_hits_total',
      help: 'Requests answered from the origin memory cache',
      labelNames: ['cache'] as const,
      registers,
      collect() {
        this.reset();
        const stats = origin.stats();
        this.inc({ cache: 'playlist' }, stats.playlistCache.hits);
        this.inc({ cache: 'segment' }, stats.segmentCache.hits);
      },
    });
    new Counter({
      name: 'onair_origin_cache_misses_total',
      help: 'Requests that read the store (or joined a read under way)',
      labelNames: ['cache'] as const,
      registers,
      collect() {
        this.reset();
        const stats = origin.stats();
        this.inc({ cache: 'playlist' }, stats.playlistCache.misses);
        this.inc({ cache: 'segment' }, stats.segmentCache.misses);
      },
    });
    new Gauge({
      name: 'onair_llhls_held_requests',
      help: 'LL-HLS blocking playlist reloads and preload-hinted parts being held',
      registers,
      collect() {
        this.set(origin.stats().heldRequests);
      },
    });
  }

  /**
   * Progressive mounts (src/origin/progressive/): this process's open listener connections per
   * mount (sum over instances for every origin's), slow listeners cut off, listeners refused
   * at the cap, and jumps (a mount that fell out of the window), read at scrape time.
   */
  watchMounts(mounts: MountsControl): void {
    const registers = [this.registry];
    new Gauge({
      name: 'onair_progressive_listeners',
      help: 'Open progressive (Icecast-style) listener connections of this origin, per mount',
      labelNames: ['channel', 'rendition'] as const,
      registers,
      collect() {
        this.reset();
        for (const mount of mounts.stats().mounts) this.set({ channel: mount.channel, rendition: mount.rendition }, mount.listeners);
      },
    });
    new Counter({
      name: 'onair_progressive_slow_disconnects_total',
      help: 'Progressive listeners disconnected because their unsent backlog passed origin.progressive.maxBacklogBytes',
      registers,
      collect() {
        this.reset();
        this.inc(mounts.stats().slowDisconnects);
      },
    });
    new Counter({
      name: 'onair_progressive_refused_total',
      help: 'Progressive listeners refused with 503 because the origin had origin.progressive.maxListeners',
      registers,
      collect() {
        this.reset();
        this.inc(mounts.stats().refused);
      },
    });
    new Counter({
      name: 'onair_progressive_jumps_total',
      help: 'Times a progressive mount went on from the live edge because its next segment had left the window',
      labelNames: ['channel', 'rendition'] as const,
      registers,
      collect() {
        this.reset();
        for (const mount of mounts.stats().mounts) this.inc({ channel: mount.channel, rendition: mount.rendition }, mount.jumps);
      },
    });
    new Counter({
      name: 'onair_progressive_undecryptable_total',
      help: "Segments and parts of an encrypted channel a progressive mount skipped: their key was not in the store",
      labelNames: ['channel', 'rendition'] as const,
      registers,
      collect() {
        this.reset();
        for (const mount of mounts.stats().mounts) this.inc({ channel: mount.channel, rendition: mount.rendition }, mount.undecryptable);
      },
    });
  }
}

/** Bytes per second between two readings of a byte counter (at most once per second apart). */
class InputBitrate {
  private readonly last = new Map<string, { at: number; bytes: number; bytesPerSecond: number }>();

  update(key: string, bytes: number): number {
    const now = Date.now();
    const previous = this.last.get(key);
    if (previous && now - previous.at < 1000) return previous.bytesPerSecond;
    const bytesPerSecond = previous && bytes >= previous.bytes ? ((bytes - previous.bytes) * 1000) / (now - previous.at) : 0;
    this.last.set(key, { at: now, bytes, bytesPerSecond });
    return bytesPerSecond;
  }

  forgetChannel(channel: string): void {
    for (const key of this.last.keys()) if (key.startsWith(`${channel}/`)) this.last.delete(key);
  }
}
