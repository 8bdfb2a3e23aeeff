/**
 * The input selector (src/ingest/input-selector.ts) on a fake clock with scripted inputs:
 * which source is on air frame by frame, when it switches and why, and that the output
 * keeps pace with real time whatever the inputs do (docs/architecture.md, Failure model).
 */
import t from 'tap';
import { FALLBACK_SOURCE_ID, InputSelector, type InputSwitch, type SelectableInput } from '../../src/ingest/input-selector.js';
import type { AacFrame } from '../../src/media/adts.js';

const SAMPLE_RATE = 48000;
const FRAME_MS = (1024 * 1000) / SAMPLE_RATE; // 21.333 ms
const SAFETY = 255;

/** A one-rendition frame group whose first byte names its source (input index, or 255 for the safety source). */
function group(source: number): AacFrame[] {
  return [{ data: Uint8Array.of(source), sampleRate: SAMPLE_RATE, channelCount: 2, objectType: 2, samples: 1024 }];
}

class ScriptedInput implements SelectableInput {
  running = true;
  silent = false;
  /** Whether the feed delivers audio right now. */
  delivering = true;
  constructor(readonly inputId: string, readonly index: number) {}
}

interface Rig {
  inputs: ScriptedInput[];
  selector: InputSelector;
  /** Source of every emitted frame group, in order. */
  aired: number[];
  switches: InputSwitch[];
  now: () => number;
  /** Advances the clock by `ms`: delivering inputs send their frames in real time, the selector ticks every 20 ms. */
  run(ms: number): void;
}

function rig(options: { inputs?: number; recoverMs?: number; inputTimeoutMs?: number; bufferMs?: number } = {}): Rig {
  let clock = 1_000_000;
  const inputs = Array.from({ length: options.inputs ?? 2 }, (_, index) => new ScriptedInput(['main', 'backup', 'third'][index]!, index));
  const aired: number[] = [];
  const switches: InputSwitch[] = [];
  const selector = new InputSelector({
    inputs,
    safety: { nextGroup: () => group(SAFETY) },
    sampleRate: SAMPLE_RATE,
    inputTimeoutMs: options.inputTimeoutMs ?? 2000,
    recoverMs: options.recoverMs ?? 5000,
    bufferMs: options.bufferMs ?? 300,
    emit: (frames) => aired.push(frames[0]!.data[0]!),
    onSwitch: (change) => switches.push(change),
  });
  // Each input sends frames at exactly real time, from its own frame counter.
  const sent = inputs.map(() => 0);
  const start = clock;
  return {
    inputs,
    selector,
    aired,
    switches,
    now: () => clock,
    run(ms) {
      const end = clock + ms;
      while (clock < end) {
        clock = Math.min(end, clock + 20);
        inputs.forEach((input, index) => {
          const due = Math.floor((clock - start) / FRAME_MS);
          const frames: AacFrame[][] = [];
          while (sent[index]! < due) {
            sent[index]! += 1;
            if (input.delivering && input.running) frames.push(group(index));
          }
          selector.push(index, frames, clock);
        });
        selector.tick(clock);
      }
    },
  };
}

/** Sources of the frames aired in [fromMs, toMs) of output time, run-length encoded. */
function airedBetween(aired: number[], fromMs: number, toMs: number): number[] {
  return [...new Set(aired.slice(Math.floor(fromMs / FRAME_MS), Math.floor(toMs / FRAME_MS)))];
}

function framesFor(ms: number): number {
  return ms / FRAME_MS;
}

t.test('the main input is on air as soon as it delivers, and the output keeps pace with real time', async (t) => {
  const { run, aired, switches, selector } = rig();
  run(10_000);
  t.same(switches.map((change) => [change.from, change.to, change.reason]), [[undefined, 'main', 'available']]);
  t.equal(selector.activeSource, 'main');
  t.same(airedBetween(aired, 0, aired.length * FRAME_MS), [0], 'only the main input was heard');
  t.ok(Math.abs(aired.length - framesFor(10_000)) <= framesFor(300) + 1, `output ${aired.length} frames for 10 s of real time`);
});

t.test('when the main input stops, the backup fills at once and takes over after inputTimeoutMs; the timeline never stalls', async (t) => {
  const { run, aired, switches, inputs, selector } = rig({ inputTimeoutMs: 2000 });
  run(5000);
  const before = aired.length;
  inputs[0]!.delivering = false;
  run(5000);
  const gapFrames = aired.length - before;
  t.ok(Math.abs(gapFrames - framesFor(5000)) <= framesFor(300) + 2, `${gapFrames} frames aired in 5 s without the main input`);
  const afterStop = aired.slice(before + framesFor(400));
  t.notOk(afterStop.includes(SAFETY), 'no silence: the backup covered the gap before the main was declared dead');
  t.ok(afterStop.every((source) => source === 1), 'the backup is heard');
  t.same(switches.at(-1), { from: 'main', to: 'backup', reason: 'no-audio', at: switches.at(-1)!.at });
  t.equal(selector.activeSource, 'backup');
});

t.test('the main input regains the air only after it has been healthy for recoverSeconds', async (t) => {
  const { run, aired, switches, inputs, now } = rig({ recoverMs: 5000 });
  run(3000);
  inputs[0]!.delivering = false;
  run(3000);
  inputs[0]!.delivering = true;
  const returnedAt = now();
  run(4000);
  t.equal(switches.at(-1)!.to, 'backup', 'after 4 s of health the backup is still on air');
  run(2000);
  const back = switches.at(-1)!;
  t.same([back.from, back.to, back.reason], ['backup', 'main', 'recovered']);
  t.ok(back.at - returnedAt >= 5000 && back.at - returnedAt <= 5100, `switched back ${back.at - returnedAt} ms after the main returned`);
  t.equal(aired.at(-1), 0);
  const afterSwitch = aired.slice(aired.indexOf(0, Math.floor(framesFor(3000)) + 1));
  t.notOk(afterSwitch.includes(1), 'once back on the main, no backup frame is interleaved');
  t.ok(aired.length <= framesFor(15_000) + 1, `no buffered audio replayed at the switch: ${aired.length} frames in 15 s`);
});

t.test('a flapping main input never flaps the audio', async (t) => {
  const { run, switches, inputs } = rig({ recoverMs: 5000, inputTimeoutMs: 500 });
  run(2000);
  for (let cycle = 0; cycle < 10; cycle++) {
    inputs[0]!.delivering = false;
    run(1500);
    inputs[0]!.delivering = true;
    run(2000);
  }
  t.same(
    switches.map((change) => change.to),
    ['main', 'backup'],
    'one switch to the backup, none back while the main keeps dropping out',
  );
});

t.test('with every input down the safety source keeps the output on time, and a returning input is heard at once', async (t) => {
  const { run, aired, switches, inputs, selector } = rig();
  run(2000);
  const before = aired.length;
  for (const input of inputs) input.delivering = false;
  run(600);
  t.ok(aired.length - before >= framesFor(600 - 300), 'a backup that stopped too is no donor: the safety source fills within the buffer');
  run(19_400);
  t.ok(Math.abs(aired.length - before - framesFor(20_000)) <= framesFor(300) + 2, 'the output advanced 20 s in 20 s');
  t.equal(selector.activeSource, FALLBACK_SOURCE_ID);
  t.same(airedBetween(aired, before * FRAME_MS + 3000, aired.length * FRAME_MS), [SAFETY], 'silence, once the buffers ran out');
  t.same([switches.at(-1)!.from, switches.at(-1)!.reason], ['main', 'no-audio'], 'both died together: straight from the main to the safety source');
  inputs[1]!.delivering = true;
  run(1000);
  t.same([switches.at(-1)!.from, switches.at(-1)!.to, switches.at(-1)!.reason], [FALLBACK_SOURCE_ID, 'backup', 'available']);
  t.equal(aired.at(-1), 1, 'the backup is heard again, without waiting for recoverSeconds');
});

t.test('a channel whose inputs never deliver goes on air from the safety source after 10 s, then takes the first input that comes', async (t) => {
  const { run, aired, switches, inputs, selector } = rig();
  for (const input of inputs) input.delivering = false;
  run(9_900);
  t.equal(aired.length, 0, 'nothing on air while the inputs may still be starting');
  t.equal(selector.activeSource, undefined);
  run(10_100);
  t.same(switches.map((change) => [change.from, change.to, change.reason]), [[undefined, FALLBACK_SOURCE_ID, 'no-audio']]);
  t.ok(Math.abs(aired.length - framesFor(10_000)) <= 2, `the safety source keeps the output on time from then on (${aired.length} frames in 10 s)`);
  t.same(airedBetween(aired, 0, aired.length * FRAME_MS), [SAFETY]);
  inputs[1]!.delivering = true;
  run(1_000);
  t.same([switches.at(-1)!.from, switches.at(-1)!.to, switches.at(-1)!.reason], [FALLBACK_SOURCE_ID, 'backup', 'available']);
  t.equal(aired.at(-1), 1, 'the backup is heard at once');
  t.ok(Math.abs(aired.length - framesFor(11_000)) <= framesFor(300) + 2, 'and the timeline runs on without a jump');
});

t.test('an encoder that exits or a feed that turns silent is left at once, with the reason', async (t) => {
  const { run, switches, inputs } = rig({ inputs: 3 });
  run(1000);
  inputs[0]!.running = false;
  run(100);
  t.same([switches.at(-1)!.to, switches.at(-1)!.reason], ['backup', 'encoder-failed']);
  inputs[1]!.silent = true;
  run(100);
  t.same([switches.at(-1)!.to, switches.at(-1)!.reason], ['third', 'silence']);
});

t.test('frames that would run ahead of real time (an encoder start-up burst) are dropped, not queued up as latency', async (t) => {
  const { selector, aired, now, run } = rig({ inputs: 1, bufferMs: 300 });
  // Two seconds of audio arrive in one go, as when FFmpeg flushes what it probed.
  selector.push(0, Array.from({ length: Math.round(framesFor(2000)) }, () => group(0)), now());
  t.ok(aired.length <= framesFor(300) + 2, `${aired.length} frames aired from a 2 s burst before anything was on air`);
  run(1000);
  const onTime = aired.length;
  // The same once it is on air: a restarted encoder flushing its probe.
  selector.push(0, Array.from({ length: Math.round(framesFor(2000)) }, () => group(0)), now());
  t.ok(aired.length - onTime <= framesFor(600) + 2, `${aired.length - onTime} frames of a 2 s burst aired`);
  t.ok(selector.stats.droppedAheadFrames > framesFor(1000), 'the rest was dropped');
  run(1000);
  t.ok(aired.length <= framesFor(2300) + 4, 'the output stays within the buffer of real time');
});

t.test('a burst of frames from a dead input (an FFmpeg flushing as it exits) does not take it back on air', async (t) => {
  const { run, switches, inputs, selector, now } = rig({ inputs: 1 });
  run(2000);
  inputs[0]!.delivering = false;
  run(3000);
  t.equal(selector.activeSource, FALLBACK_SOURCE_ID);
  selector.push(0, Array.from({ length: 10 }, () => group(0)), now());
  run(3000);
  t.same(switches.map((change) => change.to), ['main', FALLBACK_SOURCE_ID], 'the burst did not count as the feed coming back');
  inputs[0]!.delivering = true;
  run(1000);
  t.equal(selector.activeSource, 'main', 'a feed that delivers steadily is taken within a second');
});

t.test('after the process was frozen, the gap is filled up to real time at once, so the timeline stays true', async (t) => {
  const { run, aired, selector, inputs, now } = rig({ inputs: 1 });
  run(2000);
  inputs[0]!.delivering = false;
  // 15 s without a tick nor a frame: a SIGSTOPped or starved process.
  const frozenFrom = aired.length;
  selector.tick(now() + 15_000);
  t.ok(aired.length - frozenFrom >= framesFor(15_000 - 300), `${aired.length - frozenFrom} frames filled after a 15 s freeze`);
  t.ok(aired.length <= framesFor(17_000) + 1, 'and not more than real time');
});

t.test('an operator pin puts a lower-priority input on air, survives its failure, and releasing it hands back to priority', async (t) => {
  const { inputs, selector, switches, run, now } = rig({ recoverMs: 1000 });
  run(2000);
  t.equal(selector.activeSource, 'main');
  selector.pin('backup', now());
  t.equal(selector.activeSource, 'backup', 'switched at once: the backup is healthy');
  t.equal(switches.at(-1)!.reason, 'manual');
  t.equal(selector.pinnedInput, 'backup');
  run(3000);
  t.equal(selector.activeSource, 'backup', 'kept although main is healthy and has priority');

  inputs[1]!.running = false;
  run(100);
  t.equal(selector.activeSource, 'main', 'the pinned input failed: failover as usual');
  inputs[1]!.running = true;
  run(1000);
  t.equal(selector.activeSource, 'backup', 'taken back once healthy again');
  t.equal(switches.at(-1)!.reason, 'manual');

  selector.pin(undefined, now());
  t.equal(selector.pinnedInput, undefined);
  run(100);
  t.equal(selector.activeSource, 'main', 'released: main has been healthy for recoverMs, priority rules');
  t.equal(switches.at(-1)!.reason, 'recovered');
  t.throws(() => selector.pin('nope', now()), /no input "nope"/);
});
