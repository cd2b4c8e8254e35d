/**
 * Running answers, so a transport can wait for them on shutdown. Both transports
 * start each update's handling through {@link InFlight.track}; `drain` resolves once
 * none is left (answers started while draining are waited for too).
 */

/** A set of running tasks that can be drained. */
export class InFlight {
  readonly #tasks = new Set<Promise<unknown>>();
  #idle: PromiseWithResolvers<void> | undefined;

  /** How many tracked tasks are still running. */
  get size(): number {
    return this.#tasks.size;
  }

  /**
   * Tracks `task` until it settles and returns it unchanged (a rejection still
   * reaches the caller; tracking never swallows it).
   */
  track<T>(task: Promise<T>): Promise<T> {
    const entry = task.then(() => {}, () => {}).finally(() => {
      this.#tasks.delete(entry);
      if (this.#tasks.size === 0 && this.#idle) {
        this.#idle.resolve();
        this.#idle = undefined;
      }
    });
    this.#tasks.add(entry);
    return task;
  }

  /**
   * Resolves `"drained"` once nothing is running, or `"timeout"` after `timeoutMs`
   * with tasks still running (they are left alone).
   */
  async drain(timeoutMs: number): Promise<"drained" | "timeout"> {
    if (this.#tasks.size === 0) return "drained";
    this.#idle ??= Promise.withResolvers<void>();
    const idle = this.#idle.promise.then(() => "drained" as const);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), timeoutMs);
    });
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
