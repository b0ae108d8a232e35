/**
 * `lambent dev`: deploy the template, then run every function with a code
 * folder from that folder (a dev mount, control/dev-mounts.ts) and keep it
 * live: an edit under the folder re-announces the mount, which restarts the
 * function's environments, so the next invoke loads the edited code — no zip,
 * no upload. esbuild functions are rebuilt incrementally (esbuild's
 * `context.rebuild`) into `.aws-sam/lambent-dev/<LogicalId>/`, and that folder
 * is what is mounted. The stack's log events are printed as they arrive, one
 * colour per function. `stop()` ends the watchers and takes the mounts off
 * (the functions run their uploaded code again).
 */
import { existsSync, type FSWatcher, mkdirSync, rmSync, statSync, watch } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { BuildContext } from "esbuild";
import type { LambentClient } from "./api.js";
import { type DeployedFunction, type DeployOptions, type DeployResult, deployStack } from "./deploy.js";
import { esbuildMessages, esbuildOptions, parseBuildProperties } from "./esbuild.js";
import { declaresDependencies, installDependencies } from "./install.js";

export interface DevOptions extends DeployOptions {
  /** Mark function names and log lines with ANSI colours. */
  colour?: boolean;
  /** Where a log line or a status line goes (default stdout / stderr). */
  out?: (line: string) => void;
  progress?: (line: string) => void;
  /** How often the stack's logs are fetched, ms (default 250). */
  logPollMs?: number;
}

/** Names skipped by the watcher: they change without the code changing. */
const IGNORED = /(^|\/)(\.git|\.aws-sam|node_modules)(\/|$)|~$|\.swp$|\.swx$|(^|\/)\.#/;
/** Edits that land within this many ms are one change (an editor writes a file in several steps). */
const SETTLE_MS = 15;
const COLOURS = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];

interface Watched {
  fn: DeployedFunction;
  folder: string;
  mounted: string;
  esbuild?: BuildContext;
  watcher?: FSWatcher;
  timer?: NodeJS.Timeout;
  reloading: Promise<void>;
  colour: number;
}

export class DevSession {
  private readonly watched: Watched[] = [];
  private logTimer: NodeJS.Timeout | undefined;
  private readonly afterId = new Map<string, number>();
  private stopped = false;

  private constructor(
    private readonly client: LambentClient,
    private readonly opts: DevOptions,
    readonly deployed: DeployResult,
  ) {}

  /** Deploy, mount every folder-based function, start watching and streaming logs. */
  static async start(opts: DevOptions): Promise<DevSession> {
    const progress = opts.progress ?? ((l: string) => process.stderr.write(`${l}\n`));
    const deployed = await deployStack(opts, progress);
    const session = new DevSession(opts.client, opts, deployed);
    try {
      await session.mountAll(progress);
    } catch (err) {
      await session.stop();
      throw err;
    }
    session.pollLogs();
    return session;
  }

  private say(line: string): void {
    (this.opts.progress ?? ((l: string) => process.stderr.write(`${l}\n`)))(line);
  }

  private paint(w: Watched, text: string): string {
    return this.opts.colour ? `\x1b[${w.colour}m${text}\x1b[0m` : text;
  }

  private async mountAll(progress: (line: string) => void): Promise<void> {
    const templateDir = dirname(resolve(this.opts.templateFile));
    let i = 0;
    for (const fn of this.deployed.functions) {
      if (!fn.codePath || !statSync(fn.codePath).isDirectory()) {
        progress(`dev: ${fn.logicalId} has no code folder (InlineCode or a .zip): it runs its uploaded code`);
        continue;
      }
      const w: Watched = {
        fn,
        folder: fn.codePath,
        mounted: fn.codePath,
        reloading: Promise.resolve(),
        colour: COLOURS[i++ % COLOURS.length] as number,
      };
      this.watched.push(w);
      if ((fn.metadata as { BuildMethod?: unknown }).BuildMethod === "esbuild") {
        const cacheDir = join(templateDir, ".aws-sam", "lambent-build");
        const deps = await installDependencies(
          fn.codePath,
          { id: fn.logicalId, cacheDir, mode: "all", runtime: fn.runtime },
          progress,
        );
        w.mounted = join(templateDir, ".aws-sam", "lambent-dev", fn.logicalId);
        rmSync(w.mounted, { recursive: true, force: true });
        mkdirSync(w.mounted, { recursive: true });
        const esbuild = await import("esbuild");
        const props = parseBuildProperties(fn.logicalId, fn.metadata);
        w.esbuild = await esbuild.context({
          ...esbuildOptions(fn.logicalId, fn.codePath, fn.handler, props, deps?.nodeModules, w.mounted),
          write: true,
        });
        await this.rebuild(w);
      } else if (declaresDependencies(fn.codePath, fn.logicalId, "production") === "npm") {
        if (!existsSync(join(fn.codePath, "node_modules")))
          progress(
            `dev: ${fn.logicalId}: package.json has dependencies but ${fn.codePath} has no node_modules: run npm install there`,
          );
      }
      await this.client.putDevMount(fn.functionName, w.mounted);
      progress(`dev: ${this.paint(w, fn.logicalId)} (${fn.functionName}) runs from ${w.mounted}`);
      w.watcher = watch(fn.codePath, { recursive: true }, (_event, name) => {
        if (name && IGNORED.test(name.toString())) return;
        clearTimeout(w.timer);
        w.timer = setTimeout(() => {
          w.reloading = w.reloading.then(() => this.reload(w));
        }, SETTLE_MS);
      });
    }
    progress(`dev: watching ${this.watched.length} function folder(s); Ctrl-C stops`);
  }

  private async rebuild(w: Watched): Promise<boolean> {
    if (!w.esbuild) return true;
    try {
      await w.esbuild.rebuild();
      return true;
    } catch (err) {
      this.say(`dev: ${w.fn.logicalId}: esbuild failed, keeping the last build:\n${esbuildMessages(err)}`);
      return false;
    }
  }

  /** An edit: rebuild (esbuild), then announce the mount again so environments restart. */
  private async reload(w: Watched): Promise<void> {
    if (this.stopped) return;
    const started = performance.now();
    if (!(await this.rebuild(w))) return;
    try {
      await this.client.putDevMount(w.fn.functionName, w.mounted);
    } catch (err) {
      this.say(`dev: ${w.fn.logicalId}: could not reload: ${(err as Error).message}`);
      return;
    }
    this.say(`dev: reloaded ${w.fn.logicalId} in ${Math.round(performance.now() - started)} ms`);
  }

  /** Print new log events of every watched function, each line prefixed and coloured by function. */
  private pollLogs(): void {
    const since = Date.now();
    const out = this.opts.out ?? ((l: string) => process.stdout.write(`${l}\n`));
    const tick = async () => {
      for (const w of this.watched) {
        const after = this.afterId.get(w.fn.functionName);
        try {
          const page = await this.client.logEvents(
            w.fn.functionName,
            after === undefined ? { since } : { after },
          );
          for (const e of page) {
            out(`${this.paint(w, `[${w.fn.logicalId}]`)} ${e.message.replace(/\n$/, "")}`);
            this.afterId.set(w.fn.functionName, e.id);
          }
        } catch {
          // A log group that does not exist yet (never invoked) or a passing failure: next tick.
        }
      }
      if (!this.stopped) this.logTimer = setTimeout(tick, this.opts.logPollMs ?? 250);
    };
    this.logTimer = setTimeout(tick, 0);
  }

  /** Stop watching, dispose the esbuild contexts, take the mounts off. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.logTimer);
    for (const w of this.watched) {
      w.watcher?.close();
      clearTimeout(w.timer);
    }
    await Promise.all(this.watched.map((w) => w.reloading));
    for (const w of this.watched) {
      await w.esbuild?.dispose();
      await this.client
        .deleteDevMount(w.fn.functionName)
        .catch((err: Error) => this.say(`dev: ${w.fn.logicalId}: ${err.message}`));
    }
  }
}
