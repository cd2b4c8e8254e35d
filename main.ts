/**
 * Entry point: read the config, build the app, take updates by long polling, or by
 * webhook when WEBHOOK_URL is set, and shut down cleanly on SIGINT/SIGTERM: stop
 * taking updates, let running answers finish (bounded by SHUTDOWN_TIMEOUT), close the
 * store, exit 0.
 *
 * The same file runs unchanged on Deno Deploy: there the config requires webhook
 * mode and uses the app's built-in KV, and each webhook request is held until its
 * answer is complete (no work after the response; see src/transport/webhook.ts).
 */
import { GrammyError, HttpError } from "grammy";
import { getLogger, type Logger } from "@logtape/logtape";
import { type Config, ConfigError, loadEnv, parseConfig } from "./src/config.ts";
import { setupLogging, stopLogging } from "./src/log.ts";
import { type App, createApp } from "./src/app.ts";
import { NotServedError } from "./src/assistant/assistant.ts";
import { startPolling } from "./src/transport/polling.ts";
import { startWebhook } from "./src/transport/webhook.ts";
import { type MetricsServer, startMetricsServer } from "./src/transport/metrics_server.ts";

/** What main needs of a running transport. */
interface Transport {
  stop(timeoutMs: number): Promise<"drained" | "timeout">;
}

/**
 * Starts the `METRICS_PORT` server when configured, in either mode; logs and resolves
 * `null` when the port cannot be bound.
 */
function startMetrics(app: App, config: Config, log: Logger): MetricsServer | undefined | null {
  if (config.metricsPort === undefined) return undefined;
  try {
    return startMetricsServer(config.metricsPort, app.metrics, log);
  } catch (error) {
    log.fatal("METRICS_PORT {port}: cannot listen ({error}); free the port or unset it", {
      port: config.metricsPort,
      error,
    });
    return null;
  }
}

/**
 * Starts the metrics server (when configured), then webhook mode or polling; logs and
 * resolves `undefined` when either fails.
 */
async function startTransport(
  app: App,
  config: Config,
  log: Logger,
): Promise<Transport | undefined> {
  const metrics = startMetrics(app, config, log);
  if (metrics === null) return undefined;
  const updates = await startUpdates(app, config, log);
  if (!updates) {
    await metrics?.stop();
    return undefined;
  }
  return {
    async stop(timeoutMs) {
      const outcome = await updates.stop(timeoutMs);
      await metrics?.stop();
      return outcome;
    },
  };
}

/** Starts webhook mode or polling; logs and resolves `undefined` when that fails. */
async function startUpdates(
  app: App,
  config: Config,
  log: Logger,
): Promise<Transport | undefined> {
  if (!config.webhook) return await startPolling(app.bot, app.inbox, log);
  try {
    return await startWebhook(app.bot, {
      webhook: config.webhook,
      inbox: app.inbox,
      ping: () => app.store.ping(),
      metrics: app.metrics,
      metricsToken: config.metricsToken,
      log,
      ackAfterMs: config.denoDeploy ? Infinity : undefined,
    });
  } catch (error) {
    if (error instanceof GrammyError) {
      log.fatal("Telegram refused the webhook {url}: {description}", {
        url: config.webhook.url,
        description: error.description,
      });
    } else if (error instanceof Deno.errors.AddrInUse) {
      log.fatal("PORT {port} is already in use: stop the other server or set another PORT", {
        port: config.webhook.port,
      });
    } else {
      log.fatal("Cannot start the webhook server: {error}", { error });
    }
    return undefined;
  }
}

/** Resolves with the first of SIGINT/SIGTERM; where signals are unsupported, never. */
function nextSignal(log: Logger): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    try {
      Deno.addSignalListener(signal, () => resolve(signal));
    } catch (error) {
      log.debug("No {signal} listener on this platform: {error}", { signal, error });
    }
  }
  return promise;
}

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(await loadEnv());
    // Inside: a LOG_FILE that cannot be opened is a configuration error too.
    await setupLogging({ ...config.log, secrets: config.secrets });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    return 1;
  }
  const log = getLogger(["bot"]);

  const app = await createApp(config);
  try {
    await app.bot.init();
  } catch (error) {
    if (error instanceof GrammyError && (error.error_code === 401 || error.error_code === 404)) {
      log.fatal(
        "Telegram rejected TELEGRAM_BOT_TOKEN ({code} {description}): copy the token from @BotFather again",
        { code: error.error_code, description: error.description },
      );
    } else {
      const cause = error instanceof HttpError ? error.message : String(error);
      log.fatal("Cannot reach the Bot API at {apiRoot}: {cause}", {
        apiRoot: config.telegram.apiRoot,
        cause,
      });
    }
    await app.close();
    await stopLogging();
    return 1;
  }
  try {
    await app.assistant.checkServed?.();
  } catch (error) {
    if (error instanceof NotServedError) {
      log.fatal("{problem}", { problem: error.message });
      await app.close();
      await stopLogging();
      return 1;
    }
    log.warning("Could not check the OpenAI endpoint at start ({error}); going on", { error });
  }
  log.info("Store: {store}; assistant: {assistant}; channels: {channels}", {
    store: app.store.kind,
    assistant: app.assistant.kind,
    channels: config.channels.join(", "),
  });

  // Listen before taking updates, so a signal during start-up still stops cleanly.
  const stopped = nextSignal(log);
  const transport = await startTransport(app, config, log);
  if (!transport) {
    await app.close();
    await stopLogging();
    return 1;
  }
  // After the transport: the command menu is not needed to take the first update.
  await app.registerCommands();

  const signal = await stopped;
  log.info("{signal}: stopping; running answers get {seconds} s to finish", {
    signal,
    seconds: config.shutdownTimeoutMs / 1000,
  });
  const outcome = await transport.stop(config.shutdownTimeoutMs);
  if (outcome === "timeout") log.warning("Shutdown timeout: some answers were cut off");
  await app.close();
  log.info("Stopped");
  await stopLogging();
  return 0;
}

if (import.meta.main) Deno.exit(await main());
