/**
 * The three ways of showing a followed rollout: a live redrawn view on a
 * terminal, timestamped lines otherwise (and in CI mode, CI=true), JSON
 * lines with --output json.
 */
import type { RolloutRecord } from '../../rollout/types.js';
import { isCi, type Io, type OutputFormat } from '../io.js';
import { changes, jsonLine, plainLine, ttyFrame, type FollowEvent } from './events.js';

export interface Renderer {
  show(r: RolloutRecord): void;
  /** last call; leaves the final state on screen */
  close(): void;
}

export function pickRenderer(io: Io, output: OutputFormat, now: () => number = Date.now): Renderer {
  if (output === 'json') return lineRenderer(io, jsonLine);
  if (io.isTTY && !isCi(io.env)) return ttyRenderer(io, now);
  return lineRenderer(io, plainLine);
}

/** A notice (no engine leader, waiting for a lock): a JSON line on stdout under -o json, else a timestamped line on stderr. */
export function showNotice(io: Io, output: OutputFormat, e: Extract<FollowEvent, { type: 'notice' }>): void {
  if (output === 'json') io.stdout(jsonLine(e));
  else io.stderr(plainLine(e));
}

export function lineRenderer(io: Io, format: typeof plainLine): Renderer {
  let prev: RolloutRecord | undefined;
  return {
    show(r) {
      for (const e of changes(prev, r)) io.stdout(format(e));
      prev = r;
    },
    close() {},
  };
}

/** Redraws in place with ANSI cursor-up + clear-to-end; ticks every second so times move. */
export function ttyRenderer(io: Io, now: () => number): Renderer {
  let current: RolloutRecord | undefined;
  let drawn = 0;
  const draw = () => {
    if (!current) return;
    const lines = ttyFrame(current, now());
    const up = drawn > 0 ? `\x1b[${drawn}A\x1b[J` : '';
    io.stdout(`${up}${lines.join('\n')}`);
    drawn = lines.length;
  };
  const timer = setInterval(draw, 1000);
  timer.unref();
  return {
    show(r) {
      current = r;
      draw();
    },
    close() {
      clearInterval(timer);
    },
  };
}
