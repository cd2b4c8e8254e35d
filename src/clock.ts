/**
 * Time as the bot's pacing code sees it: a monotonic `now()` in milliseconds and a
 * `sleep` that an AbortSignal can cut short. Passed in wherever the bot paces itself
 * (drafts, edits, lock renewals, the webhook's acknowledgement), so tests drive time
 * by hand instead of waiting on the wall clock.
 */
export interface Clock {
  /** Milliseconds on a monotonic scale (only differences mean anything). */
  now(): number;
  /**
   * Resolves after `ms` (at once for 0 or less), or as soon as `signal` aborts; never
   * rejects.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `performance.now()` and timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep(ms, signal) {
    if (ms <= 0 || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener("abort", done, { once: true });
    });
  },
};
