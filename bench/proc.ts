/**
 * What the benchmark reads about processes and the machine: CPU time and memory of the
 * bot from /proc (Linux only; the bot itself has no such permission, the bench does),
 * the machine's description, and the git revision of a checkout.
 */

/** CPU time and memory of one process at one moment. */
export interface ProcSample {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  /** Resident set now, MB. */
  rssMb: number;
  /** Peak resident set since start (VmHWM), MB. */
  peakRssMb: number;
  /** The resident set's anonymous pages (heaps, stacks), MB. */
  rssAnonMb: number;
  /** The resident set's file pages (the deno binary's code and data, shared), MB. */
  rssFileMb: number;
}

/** Clock ticks per second of /proc/<pid>/stat, from `getconf CLK_TCK` (100 when unknown). */
export async function clockTicks(): Promise<number> {
  try {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).output();
    const n = Number(new TextDecoder().decode(out.stdout).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
}

/**
 * Reads /proc/<pid>/stat and /proc/<pid>/status. Throws when the process is gone or
 * /proc is missing (not Linux): the figures would be meaningless without it.
 */
export function sampleProcess(pid: number, ticksPerSecond: number): ProcSample {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // The command name may hold spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 (utime) and 15 (stime) of proc(5); `fields[0]` is field 3.
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
  return {
    cpuSeconds: ticks / ticksPerSecond,
    rssMb: kb("VmRSS") / 1024,
    peakRssMb: kb("VmHWM") / 1024,
    rssAnonMb: kb("RssAnon") / 1024,
    rssFileMb: kb("RssFile") / 1024,
  };
}

/**
 * CPU seconds the whole machine spent busy (all cores: /proc/stat without idle and
 * iowait) since boot; with the bot's, the bench's and Redis's own, says how much other
 * processes took during a phase.
 */
export function machineBusySeconds(ticksPerSecond: number): number {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.split(/\s+/).slice(1)
    .map(Number);
  return (user + nice + system + irq + softirq + steal) / ticksPerSecond;
}

/** Pids of this process's children whose command name is `name` (e.g. "redis-server"). */
export function childPids(name: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === Deno.pid && comm === name) pids.push(Number(entry.name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** The machine a result was measured on. */
export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  kernel: string;
  deno: string;
  v8: string;
}

/** Describes this machine; fields that cannot be read are "unknown". */
export function machineInfo(): MachineInfo {
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return "";
    }
  };
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(read("/proc/cpuinfo"))?.[1] ?? "unknown";
  const os = /^PRETTY_NAME="?([^"\n]+)"?$/m.exec(read("/etc/os-release"))?.[1] ?? Deno.build.os;
  let memoryGb = 0;
  try {
    memoryGb = Deno.systemMemoryInfo().total / 1024 ** 3;
  } catch {
    // Not allowed or not available: reported as 0.
  }
  return {
    cores: navigator.hardwareConcurrency,
    cpuModel,
    memoryGb: Math.round(memoryGb * 10) / 10,
    os,
    kernel: Deno.osRelease(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

/** A checkout's revision. */
export interface GitRevision {
  /** Full commit hash, or "unknown" outside a git checkout. */
  commit: string;
  /** Uncommitted changes in tracked or untracked files. */
  dirty: boolean;
}

/** Reads the revision of the checkout at `root` without touching its index. */
export async function gitRevision(root: string): Promise<GitRevision> {
  const git = async (...args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["--no-optional-locks", "-C", root, ...args],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  };
  try {
    const commit = await git("rev-parse", "HEAD");
    const status = await git("status", "--porcelain");
    return { commit: commit ?? "unknown", dirty: (status ?? "") !== "" };
  } catch {
    return { commit: "unknown", dirty: false };
  }
}
