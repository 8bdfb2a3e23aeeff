/**
 * The role interfaces of src/store/store.ts. MemoryStore and RedisStore implement every one:
 * `implementedRoles` below does not compile unless both classes satisfy each role, so a
 * method missing or mistyped in either fails `tsc --noEmit`. At run time, every method a
 * role names is there on both classes.
 */
import t from 'tap';
import { MemoryStore } from '../../src/store/memory-store.js';
import { RedisStore } from '../../src/store/redis-store.js';
import type {
  ChannelStatusStore,
  EventStore,
  NowPlayingStore,
  ConnectionCountStore,
  LeaseStore,
  ListenerStore,
  OriginStore,
  RecordingStore,
  SegmentPublishStore,
  Store,
  StoreLifecycle,
} from '../../src/store/store.js';

interface Roles {
  StoreLifecycle: StoreLifecycle;
  OriginStore: OriginStore;
  SegmentPublishStore: SegmentPublishStore;
  LeaseStore: LeaseStore;
  ChannelStatusStore: ChannelStatusStore;
  ListenerStore: ListenerStore;
  RecordingStore: RecordingStore;
  EventStore: EventStore;
  NowPlayingStore: NowPlayingStore;
  ConnectionCountStore: ConnectionCountStore;
}

/** Compile-time check: either store, as every role and as the whole Store. */
function implementedRoles(store: MemoryStore | RedisStore): [Roles[keyof Roles][], Store] {
  const roles: { [Role in keyof Roles]: Roles[Role] } = {
    StoreLifecycle: store,
    OriginStore: store,
    SegmentPublishStore: store,
    LeaseStore: store,
    ChannelStatusStore: store,
    ListenerStore: store,
    RecordingStore: store,
    EventStore: store,
    NowPlayingStore: store,
    ConnectionCountStore: store,
  };
  return [Object.values(roles), store];
}

/** The methods of each role, by name. */
const ROLE_METHODS = {
  StoreLifecycle: ['start', 'close'],
  OriginStore: ['getPlaylist', 'getSegment', 'getState', 'subscribe'],
  SegmentPublishStore: ['putSegment', 'publish', 'getSegment', 'getState'],
  LeaseStore: ['acquireLease', 'renewLease', 'releaseLease'],
  ChannelStatusStore: ['putStatus', 'getStatus'],
  ListenerStore: ['recordListeners', 'countListeners'],
  RecordingStore: ['putRecording', 'getRecording', 'listRecordings', 'deleteRecording'],
  EventStore: ['appendEvent', 'appendEventOnce', 'readEvents'],
  NowPlayingStore: ['putNowPlaying', 'getNowPlaying', 'subscribeNowPlaying'],
  ConnectionCountStore: ['putConnectionCounts', 'getConnectionCounts'],
} as const satisfies { [Role in keyof Roles]: readonly (keyof Roles[Role])[] };

/** Compile-time check that the lists above are complete: a method no list names fails `tsc`. */
type Unlisted = { [Role in keyof Roles]: Exclude<keyof Roles[Role], (typeof ROLE_METHODS)[Role][number] | 'kind'> }[keyof Roles];
const everyMethodListed: [Unlisted] extends [never] ? true : never = true;

t.test('the memory and Redis stores implement every method of every role', async (t) => {
  t.ok(everyMethodListed);
  t.type(implementedRoles, 'function');
  for (const [name, implementation] of [['MemoryStore', MemoryStore.prototype], ['RedisStore', RedisStore.prototype]] as const) {
    for (const [role, methods] of Object.entries(ROLE_METHODS)) {
      const missing = methods.filter((method) => typeof (implementation as unknown as Record<string, unknown>)[method] !== 'function');
      t.same(missing, [], `${name} implements ${role}`);
    }
  }
});
