/**
 * `METRICS_PORT` starts this small server, in polling and in webhook mode alike:
 * `GET /metrics` (Prometheus text, no authentication) and `GET /healthz`. It is the
 * place for metrics: the webhook port serves them only with `METRICS_TOKEN` (see
 * `webhook.ts`). It listens on all interfaces (for a Prometheus on another host):
 * keep the port closed to the internet.
 */
import type { Logger } from "@logtape/logtape";
import type { Metrics } from "../metrics.ts";

export interface MetricsServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Starts the server; rejects when the port cannot be bound. */
export function startMetricsServer(
  port: number,
  metrics: Pick<Metrics, "render" | "contentType">,
  log: Logger,
): MetricsServer {
  const server = Deno.serve({ port, onListen: () => {} }, async (request) => {
    const { pathname } = new URL(request.url);
    if (request.method !== "GET") return new Response("method not allowed", { status: 405 });
    if (pathname === "/metrics") {
      return new Response(await metrics.render(), {
        headers: { "content-type": metrics.contentType },
      });
    }
    if (pathname === "/healthz") return new Response("ok");
    return new Response("not found", { status: 404 });
  });
  log.info("Metrics on port {port} (/metrics)", { port: server.addr.port });
  return { port: server.addr.port, stop: () => server.shutdown() };
}
