/**
 * Timing taps on the fakes' HTTP servers. The fakes record when a request arrived but
 * not when an answer left: a streamed OpenAI answer's first text delta and its end, or
 * how late a Telegram answer went out after its set latency. The tap wraps the handler
 * that a fake passes to `Deno.serve` while it starts, so it sees every response leave
 * without changing the fakes (which the bench does not own) and without a proxy hop.
 */

/** One HTTP exchange as seen at the fake's server. */
export interface Exchange {
  method: string;
  path: string;
  /** `Date.now()` when the request reached the handler. */
  arrivedAt: number;
  /** When the handler produced its response (headers; for a stream, its start). */
  respondedAt: number;
  /** Streams only: when the first chunk holding `firstChunkNeedle` was sent. */
  firstChunkAt?: number;
  /** Streams only: the first chunk holding the needle, decoded (for answer markers). */
  firstChunkText?: string;
  /** Streams only: when the body ended; undefined when the client went away first. */
  endedAt?: number;
}

type Handler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

/**
 * Runs `start` (which must call `Deno.serve(options, handler)` synchronously, as both
 * fakes do) with `Deno.serve` wrapped, and returns its result and the exchanges the
 * server will see. `firstChunkNeedle` marks the stream chunk whose send time is wanted;
 * `onArrival` hears of each request as it arrives (a held long poll is recorded by the
 * fake only when it is answered).
 */
export async function tapServer<T>(
  start: () => Promise<T>,
  firstChunkNeedle?: string,
  onArrival?: (path: string, at: number) => void,
): Promise<{ value: T; exchanges: Exchange[] }> {
  const exchanges: Exchange[] = [];
  const original = Deno.serve;
  const wrap = (handler: Handler): Handler => async (request, info) => {
    const arrivedAt = Date.now();
    onArrival?.(new URL(request.url).pathname, arrivedAt);
    const response = await handler(request, info);
    const exchange: Exchange = {
      method: request.method,
      path: new URL(request.url).pathname,
      arrivedAt,
      respondedAt: Date.now(),
    };
    exchanges.push(exchange);
    const streaming = (response.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if (!streaming || !response.body) return response;
    const decoder = new TextDecoder();
    const body = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          if (exchange.firstChunkAt === undefined && firstChunkNeedle !== undefined) {
            const text = decoder.decode(chunk);
            if (text.includes(firstChunkNeedle)) {
              exchange.firstChunkAt = Date.now();
              exchange.firstChunkText = text;
            }
          }
          controller.enqueue(chunk);
        },
        flush() {
          exchange.endedAt = Date.now();
        },
      }),
    );
    return new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
  // deno-lint-ignore no-explicit-any
  const serve = (options: any, handler?: Handler) => {
    if (typeof handler !== "function") {
      throw new Error("tapServer: expected Deno.serve(options, handler)");
    }
    // deno-lint-ignore no-explicit-any
    return (original as any).call(Deno, options, wrap(handler));
  };
  try {
    // deno-lint-ignore no-explicit-any
    (Deno as any).serve = serve;
    return { value: await start(), exchanges };
  } finally {
    // deno-lint-ignore no-explicit-any
    (Deno as any).serve = original;
  }
}
