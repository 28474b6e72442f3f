import { Readable } from 'node:stream';

/**
 * One upstream SSE stream, many listeners: the request that missed the cache (the leader) and
 * any identical request that arrives while it runs (followers). The upstream body is pumped into
 * the fan-out; each client reads its own Readable, which first replays what was already received
 * and then follows live. The upstream is aborted only when every listener has gone, so one
 * client hanging up does not break the others.
 *
 * What was received is also recorded (up to `maxBytes`) so a complete stream can be stored in
 * the cache; past that, the stream still flows, but late followers can no longer join.
 */
export class StreamFanout {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #recording = true;
  #state: 'live' | 'ok' | 'failed' = 'live';
  readonly #listeners = new Set<Readable>();
  readonly #maxBytes: number;
  readonly #onAllGone: () => void;
  #ended!: (recorded: Buffer | undefined) => void;
  /** Settles when the upstream stream is over: with the complete recording, or undefined. */
  readonly ended = new Promise<Buffer | undefined>((resolve) => (this.#ended = resolve));

  constructor(maxBytes: number, onAllGone: () => void) {
    this.#maxBytes = maxBytes;
    this.#onAllGone = onAllGone;
  }

  get joinable(): boolean {
    return this.#recording && this.#state !== 'failed';
  }

  /** The complete recording, when the stream ended well and fitted. */
  recorded(): Buffer | undefined {
    return this.#state === 'ok' && this.#recording ? Buffer.concat(this.#chunks, this.#bytes) : undefined;
  }

  push(chunk: Buffer): void {
    if (this.#recording) {
      this.#bytes += chunk.length;
      if (this.#bytes > this.#maxBytes) {
        this.#recording = false;
        this.#chunks.length = 0;
      } else this.#chunks.push(chunk);
    }
    for (const listener of this.#listeners) listener.push(chunk);
  }

  /** Ends every listener; `tail` (an error event) is sent first when the stream failed. */
  finish(ok: boolean, tail?: Buffer): void {
    if (this.#state !== 'live') return;
    this.#state = ok ? 'ok' : 'failed';
    for (const listener of this.#listeners) {
      if (tail !== undefined) listener.push(tail);
      listener.push(null);
    }
    this.#listeners.clear();
    this.#ended(this.recorded());
  }

  /** A Readable for one client: replay so far, then live. Undefined when it cannot join. */
  subscribe(): Readable | undefined {
    if (!this.joinable) return undefined;
    const listener = new Readable({ read() {} });
    for (const chunk of this.#chunks) listener.push(chunk);
    if (this.#state === 'ok') {
      listener.push(null);
      return listener;
    }
    this.#listeners.add(listener);
    listener.once('close', () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#state === 'live') this.#onAllGone();
    });
    return listener;
  }
}
