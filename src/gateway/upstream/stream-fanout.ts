import { Readable } from 'node:stream';

/** The upstream body as the fan-out drives it: paused when no listener wants more. */
export interface FanoutSource {
  pause(): void;
  resume(): void;
}

export interface FanoutOptions {
  /**
   * What the fan-out may hold: the recording while the stream fits (the cache's entry cap), and
   * how far a listener may fall behind the newest chunk before it is cut off.
   */
  maxBytes: number;
  source: FanoutSource;
  /** Every listener has gone while the stream was live: cancel the upstream request. */
  onAllGone: () => void;
  /** The error event that ends a listener cut off for falling behind (`atBoundary`: its last chunk ended an event). */
  cutOff: (atBoundary: boolean) => Buffer;
  /** Each listener's Readable buffer (default 16 KiB, as a relayed stream). */
  highWaterMark?: number;
}

interface Listener {
  readonly out: Readable;
  /** Absolute index of the next chunk to hand it. */
  next: number;
  /** Bytes handed to its Readable so far. */
  sent: number;
  /** Its Readable has room (the last push was accepted under its mark, or it asked for more). */
  room: boolean;
  /** It has room and has everything: it waits for the upstream. */
  hungry: boolean;
  /** Inside #feed: a read() it triggers only gives it room (the loop goes on). */
  feeding: boolean;
  atBoundary: boolean;
  done: boolean;
  readonly onCutOff: (() => void) | undefined;
}

const BLANK_LINE = Buffer.from('\n\n');

/**
 * One upstream SSE stream, many listeners: the request that missed the cache (the leader) and
 * any identical request that arrives while it runs (followers). Each client reads its own
 * Readable, which first replays what was already received and then follows live. The upstream
 * is aborted only when every listener has gone, so one client hanging up does not break the
 * others.
 *
 * Backpressure: chunks live once, in a shared log; each listener has a cursor into it and a
 * Readable of `highWaterMark` bytes. The upstream body is read only while some listener has
 * room and has had everything (it is paused otherwise), so a lone slow client — the usual case —
 * sets the pace exactly as on a relayed stream, and so do listeners that are all slow. While a
 * faster listener waits, a slower one falls behind; the chunks it has not taken stay in the log,
 * and once it is more than `maxBytes` behind the newest chunk it is cut off with the error event
 * (after what it already has), so one stalled client never holds the others or fills memory.
 * The fan-out holds at most about `maxBytes`: the recording while it fits, else the window
 * between the slowest listener and the newest chunk.
 *
 * What was received is recorded (up to `maxBytes`) so a complete stream can be stored in the
 * cache; past that, the stream still flows, but late followers can no longer join.
 */
export class StreamFanout {
  /** Retained chunks; `#log[0]` has the absolute index `#base`. */
  readonly #log: Buffer[] = [];
  #base = 0;
  #bytes = 0;
  #recording = true;
  #state: 'live' | 'ok' | 'failed' = 'live';
  #tail: Buffer | undefined;
  #paused = false;
  #abandoned = false;
  readonly #listeners = new Set<Listener>();
  readonly #options: FanoutOptions;
  readonly #highWaterMark: number;
  #ended!: (recorded: Buffer | undefined) => void;
  /** Settles when the upstream stream is over: with the complete recording, or undefined. */
  readonly ended = new Promise<Buffer | undefined>((resolve) => (this.#ended = resolve));

  constructor(options: FanoutOptions) {
    if (!(options.maxBytes >= 1)) throw new TypeError('maxBytes must be at least 1');
    this.#options = options;
    this.#highWaterMark = options.highWaterMark ?? 16 * 1024;
  }

  get joinable(): boolean {
    return this.#recording && this.#state !== 'failed';
  }

  /** Every listener left while the stream was live, and the upstream was cancelled for it. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** The complete recording, when the stream ended well and fitted. */
  recorded(): Buffer | undefined {
    return this.#state === 'ok' && this.#recording ? Buffer.concat(this.#log, this.#bytes) : undefined;
  }

  /** A chunk from upstream: handed to every listener that has room, kept for those that have not. */
  push(chunk: Buffer): void {
    if (this.#state !== 'live') return;
    this.#log.push(chunk);
    this.#bytes += chunk.length;
    if (this.#recording && this.#bytes > this.#options.maxBytes) this.#recording = false;
    let hungry = false;
    for (const listener of this.#listeners) {
      this.#feed(listener);
      if (!listener.done && this.#bytes - listener.sent > this.#options.maxBytes) this.#cut(listener);
      else if (listener.hungry) hungry = true;
    }
    this.#trim();
    if (!hungry && !this.#paused) {
      this.#paused = true;
      this.#options.source.pause();
    }
  }

  /** The upstream is over; `tail` (an error event) follows the last chunk when it failed. */
  finish(ok: boolean, tail?: Buffer): void {
    if (this.#state !== 'live') return;
    this.#state = ok ? 'ok' : 'failed';
    this.#tail = tail;
    for (const listener of this.#listeners) this.#feed(listener);
    this.#ended(this.recorded());
  }

  /**
   * A Readable for one client: replay so far, then live. Undefined when it cannot join.
   * `onCutOff`: called if this listener is cut off for falling behind.
   */
  subscribe(onCutOff?: () => void): Readable | undefined {
    if (!this.joinable) return undefined;
    const listener: Listener = {
      out: undefined as unknown as Readable,
      next: this.#base,
      sent: 0,
      room: true,
      hungry: false,
      feeding: false,
      atBoundary: true,
      done: false,
      onCutOff,
    };
    (listener as { out: Readable }).out = new Readable({
      highWaterMark: this.#highWaterMark,
      read: () => this.#read(listener),
    });
    this.#listeners.add(listener);
    listener.out.once('close', () => this.#leave(listener));
    return listener.out;
  }

  #read(listener: Listener): void {
    listener.room = true;
    if (listener.feeding) return;
    this.#feed(listener);
    this.#trim();
    if (listener.hungry && this.#paused && this.#state === 'live') {
      this.#paused = false;
      this.#options.source.resume();
    }
  }

  /** Hands the listener what it has not had, while it has room; ends it once the stream is over. */
  #feed(listener: Listener): void {
    if (listener.done) return;
    listener.feeding = true;
    listener.hungry = false;
    try {
      const end = this.#base + this.#log.length;
      while (listener.next < end) {
        if (!listener.room) return;
        const chunk = this.#log[listener.next - this.#base] as Buffer;
        listener.next++;
        listener.sent += chunk.length;
        listener.atBoundary = chunk.length >= 2 && chunk.subarray(chunk.length - 2).equals(BLANK_LINE);
        // false: at its mark; it asks again (read()) once its client has taken some.
        if (!listener.out.push(chunk)) listener.room = false;
      }
      if (!listener.room) return;
      if (this.#state === 'live') {
        listener.hungry = true;
        return;
      }
      if (this.#tail !== undefined) listener.out.push(this.#tail);
      listener.out.push(null);
      this.#done(listener);
    } finally {
      listener.feeding = false;
    }
  }

  /** Too far behind: what it has, then the error event, then the end. */
  #cut(listener: Listener): void {
    listener.out.push(this.#options.cutOff(listener.atBoundary));
    listener.out.push(null);
    listener.onCutOff?.();
    this.#leave(listener);
  }

  #done(listener: Listener): void {
    listener.done = true;
    listener.hungry = false;
    this.#listeners.delete(listener);
  }

  #leave(listener: Listener): void {
    if (!listener.done) this.#done(listener);
    if (this.#state !== 'live' || this.#abandoned) return;
    if (this.#listeners.size === 0) {
      this.#abandoned = true;
      this.#options.onAllGone();
      return;
    }
    // The one holding the pace may have left.
    this.#trim();
    for (const other of this.#listeners) {
      if (other.hungry && this.#paused) {
        this.#paused = false;
        this.#options.source.resume();
        return;
      }
    }
  }

  /** Past the recording, chunks every listener has had are dropped. */
  #trim(): void {
    if (this.#recording) return;
    let lowest = this.#base + this.#log.length;
    for (const listener of this.#listeners) if (listener.next < lowest) lowest = listener.next;
    const drop = lowest - this.#base;
    if (drop <= 0) return;
    this.#log.splice(0, drop);
    this.#base = lowest;
  }
}
