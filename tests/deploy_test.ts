/**
 * The ways to ship the bot, as far as this machine can check them: the systemd unit,
 * the compile task (up to the denort download), and the Deno Deploy configuration.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ConfigError, parseConfig } from "../src/config.ts";
import { compileArgs, DENORT_HELP, OUTPUT, permissionFlags } from "../scripts/compile.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const denoJson = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
const UNIT = `${ROOT}deploy/telegram-gpt-bot.service`;

/** `[Section] Key=value` lines of a unit file; a repeated key keeps every value. */
function parseUnit(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(eq > 0, `not a key=value line: ${line}`);
    const key = `${section}.${line.slice(0, eq)}`;
    keys.set(key, [...(keys.get(key) ?? []), line.slice(eq + 1)]);
  }
  return keys;
}

const minimalEnv = {
  TELEGRAM_BOT_TOKEN: "123456:ABCdefGHIjklMNOpqrSTUvwxYZ0123456789",
  OPENAI_API_KEY: "sk-test-key-123456",
  CHANNEL_ID: "@my_channel",
};

Deno.test("systemd unit: hardened, restarts on failure, stops after the bot's own shutdown bound; verify", async () => {
  const unit = parseUnit(Deno.readTextFileSync(UNIT));
  const one = (key: string) => {
    const values = unit.get(key);
    assert.ok(values, `${key} is missing`);
    return values.at(-1)!;
  };
  assert.equal(one("Service.ExecStart"), "/usr/local/bin/telegram-gpt-bot");
  assert.equal(one("Service.DynamicUser"), "yes");
  assert.equal(one("Service.NoNewPrivileges"), "yes");
  assert.equal(one("Service.ProtectSystem"), "strict");
  assert.equal(one("Service.ProtectHome"), "yes");
  assert.equal(one("Service.PrivateTmp"), "yes");
  assert.equal(one("Service.Restart"), "on-failure");
  assert.equal(one("Service.KillSignal"), "SIGTERM");
  assert.equal(one("Service.EnvironmentFile"), "/etc/telegram-gpt-bot/env");
  assert.equal(one("Install.WantedBy"), "multi-user.target");
  // The KV file lives in the state directory: the working directory is that directory,
  // where the baked-in relative permissions (.env, data/) point at run time.
  const state = one("Service.StateDirectory");
  assert.equal(one("Service.WorkingDirectory"), `/var/lib/${state}`);
  const read = permissionFlags(denoJson.permissions.default).find((f) =>
    f.startsWith("--allow-read=")
  );
  assert.equal(read, "--allow-read=.env,data");
  // systemd's SIGKILL must come after the bot's own bound on running answers.
  const stopSeconds = Number(one("Service.TimeoutStopSec"));
  const shutdownSeconds = parseConfig(minimalEnv).shutdownTimeoutMs / 1000;
  assert.ok(
    stopSeconds > shutdownSeconds,
    `TimeoutStopSec=${stopSeconds} must exceed SHUTDOWN_TIMEOUT=${shutdownSeconds}`,
  );
  // V8's JIT cannot run with it.
  assert.equal(unit.get("Service.MemoryDenyWriteExecute"), undefined);

  // Where systemd-analyze exists, it must find nothing either.
  let available = true;
  try {
    await new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    available = false;
  }
  if (!available) return;
  // verify insists that ExecStart exists: check a copy whose ExecStart is a stub.
  const dir = await Deno.makeTempDir();
  try {
    const stub = `${dir}/telegram-gpt-bot`;
    await Deno.writeTextFile(stub, "#!/bin/sh\n");
    await Deno.chmod(stub, 0o755);
    const unit = (await Deno.readTextFile(UNIT)).replace(
      /^ExecStart=\S+/m,
      `ExecStart=${stub}`,
    );
    await Deno.writeTextFile(`${dir}/telegram-gpt-bot.service`, unit);
    const out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", `${dir}/telegram-gpt-bot.service`],
    }).output();
    const messages = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    // Unknown keys and bad values are only warnings (exit 0): any line about the unit fails.
    const aboutUnit = messages.split("\n").filter((l) => l.includes("telegram-gpt-bot"));
    assert.equal(out.code, 0, messages);
    assert.deepEqual(aboutUnit, [], messages);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: the permission set becomes flags with relative paths; .env is never embedded", () => {
  const args = compileArgs(denoJson);
  const set = denoJson.permissions.default;
  assert.deepEqual(args.slice(-3), ["--output", OUTPUT, "main.ts"]);
  assert.ok(args.includes(`--allow-env=${set.env.allow.join(",")}`));
  assert.ok(args.includes("--ignore-env"));
  assert.ok(args.includes("--allow-read=.env,data"));
  assert.ok(args.includes("--allow-write=data"));
  assert.ok(args.includes(`--allow-net=${set.net.join(",")}`));
  assert.ok(args.includes("--no-prompt"));
  assert.ok(!args.some((a) => a.startsWith("-P") || a.startsWith("--permission-set")));
  assert.ok(!args.some((a) => a.startsWith("--env") || a === "--no-check"));
  assert.ok(!args.some((a) => /^--allow-(all|run|ffi|sys)/.test(a)));
  assert.match(denoJson.tasks.compile, /scripts\/compile\.ts/);
  assert.doesNotMatch(denoJson.tasks.compile, /--env-file/);
  // Other shapes of a permission set.
  assert.deepEqual(permissionFlags({ read: true, net: false, write: [] }), [
    "--allow-read",
    "--no-prompt",
  ]);
  assert.deepEqual(permissionFlags({ read: { allow: ["a"], deny: ["a/secret"] } }), [
    "--allow-read=a",
    "--deny-read=a/secret",
    "--no-prompt",
  ]);
});

Deno.test("compile: without the denort download the task fails with a clear message", async () => {
  const run = async (env: Record<string, string>) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "compile"],
      cwd: ROOT,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    return { code: out.code, text };
  };
  const missing = await run({ DENORT_BIN: "/nonexistent/denort" });
  assert.equal(missing.code, 1);
  assert.match(missing.text, /DENORT_BIN=\/nonexistent\/denort is not a file/);

  // A proxy that refuses every connection stands in for an offline machine, so the
  // outcome does not depend on this machine's network.
  const offline = await run({
    HTTPS_PROXY: "http://127.0.0.1:9",
    HTTP_PROXY: "http://127.0.0.1:9",
  });
  if (offline.code === 0) {
    // denort was already in Deno's cache: then the build must really have happened.
    assert.ok((await Deno.stat(`${ROOT}${OUTPUT}`)).isFile, offline.text);
  } else {
    assert.equal(offline.code, 1);
    assert.ok(offline.text.includes(DENORT_HELP), offline.text);
  }
});

Deno.test("Deno Deploy: webhook mode is required, the built-in KV is used, KV_PATH is refused", () => {
  const onDeploy = { ...minimalEnv, DENO_DEPLOYMENT_ID: "abc123" };
  assert.throws(() => parseConfig(onDeploy), (error: unknown) => {
    assert.ok(error instanceof ConfigError);
    assert.equal(error.variable, "WEBHOOK_URL");
    assert.match(error.message, /required on Deno Deploy/);
    return true;
  });
  const webhook = { WEBHOOK_URL: "https://my-bot.deno.dev/telegram", WEBHOOK_SECRET: "s3cret" };
  const config = parseConfig({ ...onDeploy, ...webhook });
  assert.equal(config.denoDeploy, true);
  assert.equal(config.kvPath, undefined, "Deno.openKv() without a path");
  assert.equal(config.webhook?.path, "/telegram");
  assert.throws(
    () => parseConfig({ ...onDeploy, ...webhook, KV_PATH: "data/bot.kv" }),
    (error: unknown) => error instanceof ConfigError && error.variable === "KV_PATH",
  );
  // Elsewhere nothing changes.
  const local = parseConfig(minimalEnv);
  assert.equal(local.denoDeploy, false);
  assert.equal(local.kvPath, "data/bot.kv");
});
