/**
 * The input selector (src/ingest/input-selector.ts) with inputs that deliver as FFmpeg's
 * MPEG-TS output does: frames in bursts (a few frames every 100–200 ms), not one by one.
 * Every frame carries its input and its position in that input's own stream, so a listener's
 * view of the output can be checked frame by frame: at an input switch the backup's audio
 * follows the main's with no safety frame (silence) between and no frame of either stream
 * repeated or skipped beyond the splice itself (docs/architecture.md, Failure model).
 */
import t from 'tap';
import { InputSelector, type InputSwitch, type SelectableInput } from '../../src/ingest/input-selector.js';
import type { AacFrame } from '../../src/media/adts.js';

const SAMPLE_RATE = 48000;
const FRAME_MS = (1024 * 1000) / SAMPLE_RATE; // 21.333 ms
const SAFETY = 255;
const TICK_MS = 20;

interface Aired {
  source: number;
  /** Position in the source's own stream (frames since it started). */
  seq: number;
}

function frame(source: number, seq: number): AacFrame[] {
  return [{ data: Uint8Array.of(source, seq >> 16, (seq >> 8) & 0xff, seq & 0xff), sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, samples: 1024 }];
}

/** A small deterministic generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

class BurstyInput implements SelectableInput {
  running = true;
  silent = false;
  delivering = true;
  /** Frames produced (in real time) and frames handed over so far. */
  produced = 0;
  delivered = 0;
  nextBurstAt: number;
  constructor(
    readonly inputId: string,
    readonly index: number,
    start: number,
    private readonly next: () => number,
  ) {
    this.nextBurstAt = start + this.gap();
  }

  /** Time to the next burst: 100–200 ms (5 to 9 frames' worth). */
  gap(): number {
    return 100 + this.next() * 100;
  }
}

function rig(options: { seed: number; bufferMs?: number; inputTimeoutMs?: number; recoverMs?: number }) {
  let clock = 1_000_000;
  const start = clock;
  const next = random(options.seed);
  // The backup's encoder starts a little later, so that the main is on air first.
  const inputs = ['main', 'backup'].map((id, index) => new BurstyInput(id, index, start + index * 300, next));
  const aired: Aired[] = [];
  const switches: InputSwitch[] = [];
  const selector = new InputSelector({
    inputs,
    safety: { nextGroup: () => frame(SAFETY, 0) },
    sampleRate: SAMPLE_RATE,
    inputTimeoutMs: options.inputTimeoutMs ?? 2000,
    recoverMs: options.recoverMs ?? 5000,
    bufferMs: options.bufferMs ?? 200,
    emit: (group) => {
      const data = group[0]!.data;
      aired.push({ source: data[0]!, seq: (data[1]! << 16) | (data[2]! << 8) | data[3]! });
    },
    onSwitch: (change) => switches.push(change),
  });
  /** Frames each input produced up to `at`: its encoder runs in real time from the start. */
  const produce = (at: number): void => {
    for (const input of inputs) input.produced = Math.floor((at - start) / FRAME_MS);
  };
  /** Hands over an input's frames produced since its last burst (a feed that stopped sends none, and loses them). */
  const burst = (input: BurstyInput, at: number): void => {
    const frames: AacFrame[][] = [];
    for (; input.delivered < input.produced; input.delivered++) if (input.delivering) frames.push(frame(input.index, input.delivered));
    selector.push(input.index, frames, at);
  };
  return {
    inputs,
    selector,
    aired,
    switches,
    now: () => clock,
    /** Runs `ms` of time: inputs deliver their bursts, the selector ticks every 20 ms. */
    run(ms: number): void {
      const end = clock + ms;
      while (clock < end) {
        clock = Math.min(end, clock + 1);
        produce(clock);
        for (const input of inputs) {
          if (clock >= input.nextBurstAt) {
            burst(input, clock);
            input.nextBurstAt = clock + input.gap();
          }
        }
        if ((clock - start) % TICK_MS === 0) selector.tick(clock);
      }
    },
    /**
     * The process is starved for `ms`: no tick and no read. Then, as in Node's event loop
     * (timers before I/O), the selector ticks first and only then reads what the inputs sent meanwhile.
     */
    stall(ms: number): void {
      clock += ms;
      produce(clock);
      selector.tick(clock);
      for (const input of inputs) {
        burst(input, clock);
        input.nextBurstAt = clock + input.gap();
      }
    },
  };
}

/** Every place where the output is not the next frame of the same stream: the listener's breaks. */
function breaks(aired: Aired[], from = 0): string[] {
  const found: string[] = [];
  for (let index = Math.max(1, from); index < aired.length; index++) {
    const previous = aired[index - 1]!;
    const current = aired[index]!;
    if (current.source === SAFETY && previous.source === SAFETY) continue;
    if (current.source !== previous.source) found.push(`${previous.source}#${previous.seq} → ${current.source}#${current.seq} at frame ${index}`);
    else if (current.seq !== previous.seq + 1) found.push(`${current.source}: #${previous.seq} → #${current.seq} at frame ${index}`);
  }
  return found;
}

for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
  t.test(`seed ${seed}: the main stops, the bursty backup covers with no silence and no frame repeated or skipped`, async (t) => {
    const { run, aired, inputs, switches, selector } = rig({ seed });
    run(5000);
    t.same(breaks(aired), [], 'the bursty main alone plays with no break (bursts within bufferMs need no fill)');
    t.equal(selector.stats.filledFrames, 0, 'nothing filled while the main delivered');
    const before = aired.length;
    inputs[0]!.delivering = false;
    run(6000);
    t.same(switches.map((change) => [change.to, change.reason]), [['main', 'available'], ['backup', 'no-audio']]);
    t.notOk(aired.slice(before).some((each) => each.source === SAFETY), 'no safety frame (silence) aired');
    const found = breaks(aired);
    t.equal(found.length, 1, `one splice only, the switch itself: ${found.join('; ')}`);
    t.match(found[0] ?? '', /^0#\d+ → 1#\d+/, 'from the main to the backup');
    // The backup's stream is continuous to the end: its last frame aired is the one before its newest.
    const last = aired.at(-1)!;
    t.ok(inputs[1]!.delivered - last.seq <= 10, `the output follows the backup's stream closely (${inputs[1]!.delivered - 1 - last.seq} frames behind its newest)`);
    const during = aired.length - before;
    t.ok(Math.abs(during - 6000 / FRAME_MS) <= 200 / FRAME_MS + 2, `the output kept pace with real time: ${during} frames in 6 s`);
  });
}

t.test('the main input returns: the switch back after recoverMs is one splice too', async (t) => {
  const { run, aired, inputs, switches } = rig({ seed: 11, recoverMs: 3000 });
  run(3000);
  inputs[0]!.delivering = false;
  run(3000);
  inputs[0]!.delivering = true;
  run(5000);
  t.same(switches.map((change) => change.to), ['main', 'backup', 'main']);
  const found = breaks(aired);
  t.equal(found.length, 2, `two splices, main → backup → main: ${found.join('; ')}`);
  t.notOk(aired.some((each) => each.source === SAFETY), 'no silence at either switch');
});

t.test('the backup stops while it covers a gap: the safety source fills only then, and the next input back is heard from the right frame', async (t) => {
  const { run, aired, inputs, switches } = rig({ seed: 12 });
  run(2000);
  inputs[0]!.delivering = false;
  run(1000);
  inputs[1]!.delivering = false;
  run(2500);
  t.same(switches.map((change) => change.to), ['main', 'backup', 'fallback']);
  const safetyAt = aired.findIndex((each) => each.source === SAFETY);
  t.ok(safetyAt > 0, 'silence once both had stopped');
  t.same(breaks(aired).length, 2, `main → backup, then backup → silence: ${breaks(aired).join('; ')}`);
});

t.test('a process stall shorter than inputTimeoutMs: the audio the inputs sent meanwhile is aired, not replaced by a fill', async (t) => {
  const { run, stall, aired, switches, selector } = rig({ seed: 21 });
  run(3000);
  for (let count = 0; count < 5; count++) {
    stall(350);
    run(1500);
  }
  t.same(switches.map((change) => change.to), ['main'], 'the main stayed on air');
  t.equal(selector.stats.filledFrames, 0, 'no fill from the backup or the safety source');
  t.same(breaks(aired), [], 'the main plays on with no break');
});
