/**
 * A second revision of the bot for `--compare`: `git worktree add --detach` into a
 * temporary directory, so the main checkout (and other people's uncommitted work in
 * it) is never touched; removed again afterwards.
 */

export interface Worktree {
  /** Absolute path of the checkout, without a trailing slash. */
  root: string;
  /** The full commit hash checked out. */
  commit: string;
  remove(): Promise<void>;
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args: ["-C", cwd, ...args], stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return text;
}

/** Checks `rev` of the repository at `repoRoot` out into a new temporary worktree. */
export async function addWorktree(repoRoot: string, rev: string): Promise<Worktree> {
  const commit = await git(repoRoot, "rev-parse", "--verify", `${rev}^{commit}`);
  const parent = await Deno.makeTempDir({ prefix: "bot-bench-" });
  const root = `${parent}/tree`;
  await git(repoRoot, "worktree", "add", "--detach", root, commit);
  return {
    root,
    commit,
    async remove() {
      try {
        await git(repoRoot, "worktree", "remove", "--force", root);
      } finally {
        await Deno.remove(parent, { recursive: true }).catch(() => {});
      }
    },
  };
}
