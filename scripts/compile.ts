/**
 * `deno task compile`: builds `dist/telegram-gpt-bot`, one executable with the
 * permission set of deno.json (`permissions.default`) baked in.
 *
 * The set is passed as `--allow-*` flags rather than with `deno compile -P`: `-P`
 * resolves the set's relative paths (`.env`, `data`) against the project directory
 * at compile time and bakes those absolute paths into the binary (seen in the
 * binary's metadata with Deno 2.9.6), so an installed binary could read only
 * `/path/to/checkout/data`. Flags stay relative and resolve against the working
 * directory at run time: the binary reads `./.env` and writes `./data/` wherever it
 * is started (under systemd, its state directory).
 *
 * `.env` is never given to `deno compile --env-file`, which would embed the file,
 * secrets included, in the executable; the binary reads `.env` itself at start.
 *
 * `deno compile` needs `denort`, Deno's runtime without the tooling, which it
 * downloads from dl.deno.land on first use. Offline that fails; this script then
 * says how to provide it (`DENORT_BIN`) and exits non-zero.
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const OUTPUT = "dist/telegram-gpt-bot";

type Value = boolean | string | string[];
type Permission = Value | { allow?: Value; deny?: Value; ignore?: Value };

/** One `--<mode>-<name>[=a,b]` flag, or none for `false`/empty. */
function flag(mode: string, name: string, value: Value | undefined): string[] {
  if (value === undefined || value === false) return [];
  if (value === true) return [`--${mode}-${name}`];
  const list = Array.isArray(value) ? value : [value];
  return list.length === 0 ? [] : [`--${mode}-${name}=${list.join(",")}`];
}

/**
 * The flags for a permission set as deno.json writes it (`{ read: [...], env: {
 * allow, ignore }, ... }`), relative paths kept as written. `--no-prompt` is added:
 * a service has no one to answer a prompt.
 */
export function permissionFlags(set: Record<string, Permission>): string[] {
  const flags: string[] = [];
  for (const [name, permission] of Object.entries(set)) {
    if (name === "all") {
      if (permission === true) flags.push("--allow-all");
      continue;
    }
    if (typeof permission === "object" && !Array.isArray(permission)) {
      flags.push(...flag("allow", name, permission.allow));
      flags.push(...flag("deny", name, permission.deny));
      flags.push(...flag("ignore", name, permission.ignore));
    } else {
      flags.push(...flag("allow", name, permission));
    }
  }
  return [...flags, "--no-prompt"];
}

/** The `deno compile` arguments for deno.json's contents. */
export function compileArgs(denoJson: { permissions: { default: Record<string, Permission> } }) {
  return [
    "compile",
    ...permissionFlags(denoJson.permissions.default),
    "--output",
    OUTPUT,
    "main.ts",
  ];
}

/** What to tell the operator when the runtime download failed. */
export const DENORT_HELP =
  "deno compile needs Deno's runtime `denort` and downloads it from dl.deno.land on first use; " +
  "that download failed (an offline machine?). Download denort-<target>.zip for this Deno " +
  `version (${Deno.version.deno}) on a machine with internet, unzip it here and run ` +
  "`DENORT_BIN=/path/to/denort deno task compile`.";

async function main(): Promise<number> {
  const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const denort = Deno.env.get("DENORT_BIN");
  if (denort) {
    try {
      if (!(await Deno.stat(denort)).isFile) throw new Error("not a file");
    } catch {
      console.error(`DENORT_BIN=${denort} is not a file: point it at the unzipped denort binary.`);
      return 1;
    }
  }
  const args = compileArgs(denoJson);
  console.error(`deno ${args.join(" ")}`);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "inherit",
    stderr: "piped",
  }).spawn();
  let errors = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stderr) {
    errors += decoder.decode(chunk, { stream: true });
    await Deno.stderr.write(chunk);
  }
  const { code } = await child.status;
  if (code !== 0 && /denort|dl\.deno\.land|base binary/i.test(errors)) {
    console.error(`\n${DENORT_HELP}`);
  } else if (code === 0) {
    console.error(
      `Built ${OUTPUT}: copy it to the server; it reads .env and data/ from its working directory.`,
    );
  }
  return code === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
