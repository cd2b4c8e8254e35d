/**
 * A clock the test moves by hand: `sleep` resolves only when `advance` passes its
 * deadline (or its signal aborts), so pacing is tested without waiting on, or racing,
 * the wall clock.
 */
import type { Clock } from "../../src/clock.ts";

interface Sleeper {
  at: number;
  resolve: () => void;
}

/** Lets pending promise callbacks and ready I/O run. */
export const settle = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export class ManualClock implements Clock {
  #t = 1_000_000;
  #sleepers = new Set<Sleeper>();

  now(): number {
    return this.#t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const sleeper: Sleeper = {
        at: this.#t + ms,
        resolve: () => {
          this.#sleepers.delete(sleeper);
          resolve();
        },
      };
      this.#sleepers.add(sleeper);
      signal?.addEventListener("abort", sleeper.resolve, { once: true });
    });
  }

  /** How many sleeps are pending. */
  get sleeping(): number {
    return this.#sleepers.size;
  }

  /**
   * Moves time forward by `ms`, waking each sleeper whose deadline passes, in order,
   * and letting what it starts run before the next one.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#t + ms;
    while (true) {
      await settle();
      const due = [...this.#sleepers].filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#t = Math.max(this.#t, due.at);
      due.resolve();
    }
    this.#t = end;
    await settle();
  }
}
