/**
 * Keeps the origin subscribed to the store's publish notifications. A failed subscription is
 * retried in the background; meanwhile cached playlists still expire by max age, so the origin
 * serves fresh playlists, only with a little more store traffic.
 */
import type { FastifyBaseLogger } from 'fastify';
import { systemClock, type Clock, type Timer } from '../clock.js';
import type { OriginStore, StoreUpdateListener } from '../store/store.js';

const RETRY_DELAY_MS = 1000;

export class StoreUpdates {
  private unsubscribe: (() => Promise<void>) | undefined;
  private retryTimer: Timer | undefined;
  private closed = false;

  constructor(
    private readonly store: Pick<OriginStore, 'subscribe'>,
    private readonly onUpdate: StoreUpdateListener,
    /** Called once subscribed: notifications may have been missed before. */
    private readonly onSubscribed: () => void,
    private readonly log: FastifyBaseLogger,
    /** The retry delay counts on it (the origin's clock). */
    private readonly clock: Clock = systemClock,
  ) {}

  /** Resolves once the first attempt has succeeded or failed; never rejects. */
  start(): Promise<void> {
    return this.attempt();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.retryTimer?.cancel();
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    if (!unsubscribe) return;
    try {
      await unsubscribe();
    } catch (error) {
      this.log.warn({ err: error }, 'store unsubscribe failed');
    }
  }

  private async attempt(): Promise<void> {
    try {
      const unsubscribe = await this.store.subscribe(this.onUpdate);
      if (this.closed) {
        await unsubscribe();
        return;
      }
      this.unsubscribe = unsubscribe;
      this.onSubscribed();
    } catch (error) {
      if (this.closed) return;
      this.log.warn({ err: error, retryInMs: RETRY_DELAY_MS }, 'store subscription failed, playlists refresh by max age meanwhile');
      this.retryTimer = this.clock.setTimeout(() => void this.attempt(), RETRY_DELAY_MS);
    }
  }
}
