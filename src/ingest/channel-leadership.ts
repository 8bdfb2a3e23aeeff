/**
 * Hot standby: which of the `onair ingest` processes sharing a store writes a channel.
 * Each process runs this loop per channel. The leader holds the channel's lease in the
 * store and renews it every third of `leaseMs`; the others try to take it every quarter
 * of `leaseMs`, so a dead leader's lease runs out and a standby leads within
 * `leaseMs` plus one attempt (0.8 s + 0.2 s with 4 s segments; renewals every 0.27 s). Every write of the leader carries the lease token and the
 * store checks it in the same atomic step (fencing): a paused or cut-off old leader can
 * never overwrite its successor, whatever its clock says.
 *
 * The leader also steps down by itself once it could not renew for `leaseMs` (it can't
 * know whether its lease still exists), and whenever a fenced write is refused.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { Lease, LeaseStore } from '../store/store.js';

export interface ChannelLeadershipOptions {
  store: LeaseStore;
  channel: string;
  leaseMs: number;
  logger: Logger;
  /** Called with the new lease; leadership counts from when the returned promise resolves. */
  onLead: (lease: Lease) => Promise<void>;
  /** Called when leadership ends (lost, expired, fenced or closed). */
  onFollow: (reason: string) => void;
  /** Time and timers of the loop (tests pass a manual clock); default the system clock. */
  clock?: Clock;
}

export interface LeadershipStats {
  acquisitions: number;
  losses: number;
  storeErrors: number;
}

/** Unique per process and channel: tokens of two processes never compare equal. */
export function leaseOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/**
 * Lease length for a target duration: 0.2 × TD, between 0.3 s and 3 s. The leader may die
 * just before publishing, a whole TD after its last segment; the standby then needs the
 * lease plus a quarter of it to take over, and players must see the next segment within
 * 1.5 × TD (docs/architecture.md, Failure model): takeover has to fit in half a TD, with
 * room for a player's poll.
 */
export function defaultLeaseMs(targetDurationSeconds: number): number {
  return Math.min(3000, Math.max(300, Math.round(targetDurationSeconds * 200)));
}

export class ChannelLeadership {
  readonly stats: LeadershipStats = { acquisitions: 0, losses: 0, storeErrors: 0 };
  private readonly options: ChannelLeadershipOptions;
  /** This process's name in the lease: `host:pid:random`. */
  readonly owner = leaseOwner();
  private readonly clock: Clock;
  private readonly logger: Logger;
  private lease: Lease | undefined;
  /** Until when the current lease surely holds: sent-time of the last successful renewal + leaseMs. */
  private validUntil = 0;
  private timer: Timer | undefined;
  private running = false;
  private busy: Promise<void> = Promise.resolve();

  constructor(options: ChannelLeadershipOptions) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger.child({ channel: options.channel });
  }

  get isLeader(): boolean {
    return this.lease !== undefined;
  }

  get token(): string | undefined {
    return this.lease?.token;
  }

  start(): void {
    this.running = true;
    this.schedule(0);
  }

  /** The packager saw a fenced write refused: someone else leads now. */
  fenced(): void {
    if (this.lease) this.lose('fenced: another packager leads');
  }

  /** Stops the loop; a leader gives the lease up so a standby takes over at once. */
  async close(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    await this.busy;
    const lease = this.lease;
    if (!lease) return;
    this.lose('closing');
    await this.options.store.releaseLease(lease).catch((error: unknown) => {
      this.logger.warn({ err: error }, 'could not release the lease; it expires by itself');
    });
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    this.timer = this.clock.setTimeout(() => {
      this.busy = this.step().finally(() => {
        this.schedule(this.lease ? this.options.leaseMs / 3 : this.options.leaseMs / 4);
      });
    }, delayMs);
  }

  private async step(): Promise<void> {
    const { store, channel, leaseMs } = this.options;
    const sentAt = this.clock.now();
    try {
      if (this.lease) {
        if (await this.bounded(store.renewLease(this.lease, leaseMs))) {
          this.validUntil = sentAt + leaseMs;
        } else {
          this.lose('lease lost: it expired or was taken over');
        }
        return;
      }
      const lease = await this.bounded(store.acquireLease(channel, this.owner, leaseMs));
      if (lease && !this.running) {
        // Closed meanwhile: hand it back rather than make a standby wait it out.
        await store.releaseLease(lease).catch(() => undefined);
        return;
      }
      if (!lease) return;
      this.lease = lease;
      this.validUntil = sentAt + leaseMs;
      this.stats.acquisitions += 1;
      this.logger.info({ token: lease.token }, 'leading the channel');
      try {
        await this.options.onLead(lease);
      } catch (error) {
        // Could not take over (the store failed mid-way): let another packager try.
        this.lease = undefined;
        await store.releaseLease(lease).catch(() => undefined);
        throw error;
      }
    } catch (error) {
      this.stats.storeErrors += 1;
      if (this.lease && this.clock.now() >= this.validUntil) {
        this.lose('store unreachable for longer than the lease');
      } else {
        this.logger.debug({ err: error }, 'lease request failed; retrying');
      }
    }
  }

  /**
   * A lease call that takes longer than half the lease counts as failed: waiting for the
   * store's own command timeout (seconds) would keep a cut-off leader believing it leads.
   */
  private bounded<T>(call: Promise<T>): Promise<T> {
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => reject(new Error('lease call timed out')), this.options.leaseMs / 2);
    });
    call.catch(() => undefined);
    return Promise.race([call, timeout]).finally(() => timer?.cancel());
  }

  private lose(reason: string): void {
    this.lease = undefined;
    this.stats.losses += 1;
    this.logger.warn({ reason }, 'no longer leading the channel; standing by');
    this.options.onFollow(reason);
  }
}
