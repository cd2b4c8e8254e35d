/**
 * Entry point: read the config, build the app, run long polling (or the webhook
 * server when WEBHOOK_URL is set), and shut down cleanly on SIGINT/SIGTERM: stop
 * taking updates, let running answers finish (bounded by SHUTDOWN_TIMEOUT), close
 * the store, exit 0.
 */
import { GrammyError, HttpError } from "grammy";
import { getLogger } from "@logtape/logtape";
import { ConfigError, loadEnv, parseConfig } from "./src/config.ts";
import { setupLogging, stopLogging } from "./src/log.ts";
import { createApp } from "./src/app.ts";
import { registerCommands } from "./src/bot/bot.ts";
import { startPolling } from "./src/transport/polling.ts";

async function main(): Promise<number> {
  let config;
  try {
    config = parseConfig(await loadEnv());
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    return 1;
  }
  await setupLogging({ ...config.log, secrets: config.secrets });
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
  await registerCommands(app.bot, log);
  log.info("Store: {store}; assistant: {assistant}; channels: {channels}", {
    store: app.store.kind,
    assistant: app.assistant.kind,
    channels: config.channels.join(", "),
  });

  const transport = await startPolling(app.bot, log);

  const { promise: stopped, resolve: stop } = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stop(signal));
  }
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
