/** Markdown tables and the goals of issue 9, from the scenario results. */
import { mb, ms, num, ratio } from "./stats.mjs";

/** A Markdown table; the first column (and any named in `left`) left-aligned, numbers right. */
const table = (head, rows, left = []) =>
  [
    `| ${head.join(" | ")} |`,
    `|${head.map((h, i) => (i === 0 || left.includes(h) ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");

const failed = (r) => r && typeof r.failed === "string";

export function render({ meta, status, results, failures = [] }) {
  const label = Object.fromEntries(status.map((s) => [s.id, s.id]));
  const lambentIds = status.filter((s) => s.id.startsWith("lambent") && s.status === "ok").map((s) => s.id);
  const out = [];
  out.push(
    `### Lambent benchmarks — ${meta.date.slice(0, 16).replace("T", " ")} UTC${meta.quick ? " (--quick: smoke numbers)" : ""}`,
  );
  out.push("");
  out.push(
    `${meta.cpus} × ${meta.cpu}, ${meta.memGiB} GiB RAM, Linux ${meta.kernel}, Node ${meta.node}, Lambent ${meta.lambent}; ` +
      `all systems running side by side, interleaved round by round; times in ms.`,
  );
  out.push("");
  out.push(
    table(
      ["system", "what", "status"],
      status.map((s) => [`\`${s.id}\``, s.label, s.status]),
      ["what", "status"],
    ),
  );
  if (meta.runDir)
    out.push(
      "",
      `Every server's stdout and stderr: \`${meta.runDir.replace(/^.*\/(bench\/)/, "$1")}/logs/\`.`,
    );
  if (failures.length > 0) {
    out.push(
      "",
      "**Failures**: servers that died during the run (their results for that scenario are not shown)",
    );
    for (const f of failures) {
      out.push(
        "",
        `- \`${f.system}\` ${f.how} during ${f.scenario}${f.log ? ` (full log: \`${f.log}\`)` : ""}; its last log lines:`,
        "",
        "  ```",
        ...(f.lastLines || "(no output)").split("\n").map((l) => `  ${l}`),
        "  ```",
      );
    }
  }

  const W = results.warm;
  const floorWarm = W?.floor?.p50;
  const slsWarm = W?.sls?.p50;
  if (W && !failed(W)) {
    out.push(
      "",
      `**Warm invoke** (${meta.config.warm.invokes} sequential invokes over one keep-alive connection)`,
      "",
    );
    out.push(
      table(
        ["system", "p50", "p99", "p99.9", "mean", "p50 over floor", "× floor p50", "× sls p50", "errors"],
        Object.entries(W).map(([id, r]) => [
          label[id] ?? id,
          ms(r.p50),
          ms(r.p99),
          ms(r.p999),
          ms(r.mean),
          id === "floor" ? "–" : `+${ms(r.p50 - floorWarm)}`,
          ratio(r.p50, floorWarm),
          ratio(r.p50, slsWarm),
          r.errors,
        ]),
      ),
    );
  } else if (W) out.push("", `**Warm invoke**: failed: ${W.failed}`);

  // Recording metrics (AWS/Lambda tallies, the Prometheus view) vs --no-metrics, same server otherwise.
  const on = "lambent-process";
  const off = "lambent-process-nometrics";
  const T0 = results.throughput;
  const warmPair = W && !failed(W) && W[on] && W[off];
  const tputPair = T0 && !failed(T0) && T0[on] && T0[off];
  if (warmPair || tputPair) {
    const cs = meta.config.throughput.concurrency;
    out.push(
      "",
      `**Metrics on vs off** (\`${on}\` records metrics, \`${off}\` runs with \`--no-metrics\`; warm: the sequential invokes above; throughput: invokes/s)`,
      "",
    );
    const row = (id) => [
      `\`${id}\``,
      ...(warmPair ? [ms(W[id].p50), ms(W[id].p99), ms(W[id].mean)] : []),
      ...(tputPair ? cs.map((c) => num(T0[id][c]?.rps)) : []),
    ];
    const delta = [
      "on − off",
      ...(warmPair
        ? ["p50", "p99", "mean"].map((k) => `${W[on][k] >= W[off][k] ? "+" : ""}${ms(W[on][k] - W[off][k])}`)
        : []),
      ...(tputPair ? cs.map((c) => ratio(T0[on][c]?.rps, T0[off][c]?.rps)) : []),
    ];
    out.push(
      table(
        [
          "system",
          ...(warmPair ? ["warm p50", "warm p99", "warm mean"] : []),
          ...(tputPair ? cs.map((c) => `c=${c}`) : []),
        ],
        [row(on), row(off), delta],
      ),
    );
  }

  const P = results.payload;
  if (P && !failed(P)) {
    out.push(
      "",
      `**Payload** (1 MiB JSON request echoed back as a 1 MiB response, ${meta.config.payload.count} round trips)`,
      "",
    );
    out.push(
      table(
        ["system", "p50", "p99", "× floor p50", "errors"],
        Object.entries(P).map(([id, r]) => [
          label[id] ?? id,
          ms(r.p50),
          ms(r.p99),
          ratio(r.p50, P.floor?.p50),
          r.errors ? `${r.errors} (${r.notes?.[0] ?? ""})` : 0,
        ]),
      ),
    );
  } else if (P) out.push("", `**Payload**: failed: ${P.failed}`);

  const T = results.throughput;
  if (T && !failed(T)) {
    const cs = meta.config.throughput.concurrency;
    out.push(
      "",
      `**Throughput** (invokes/s, undici loop, ${meta.config.throughput.rounds} × ${meta.config.throughput.durationMs} ms per system and concurrency)`,
      "",
    );
    out.push(
      table(
        ["system", ...cs.map((c) => `c=${c}`), "errors", "× sls (c=16)", "× sls-inprocess (c=16)"],
        Object.entries(T).map(([id, r]) => {
          const errs = cs.map((c) => r[c]?.errors ?? 0).reduce((a, b) => a + b, 0);
          const st = cs.flatMap((c) => Object.entries(r[c]?.statuses ?? {}).map(([k, v]) => `${v}×${k}`));
          return [
            label[id] ?? id,
            ...cs.map((c) => num(r[c]?.rps)),
            errs ? `${errs} (${st.join(", ")})` : 0,
            ratio(r[16]?.rps, T.sls?.[16]?.rps),
            ratio(r[16]?.rps, T["sls-inprocess"]?.[16]?.rps),
          ];
        }),
      ),
    );
  } else if (T) out.push("", `**Throughput**: failed: ${T.failed}`);

  const C = results.cold;
  const spawnFloor = C?.["spawn-floor"]?.p50;
  if (C && !failed(C)) {
    out.push(
      "",
      `**Cold start** (${meta.config.cold.count} × create a new function, time its first invoke; serverless-offline: first invoke of a not-yet-used function name)`,
      "",
    );
    out.push(
      table(
        ["system", "p50", "p99", "× spawn floor p50", "CreateFunction p50", "errors"],
        Object.entries(C).map(([id, r]) => [
          label[id] ?? id,
          ms(r.p50),
          ms(r.p99),
          ratio(r.p50, spawnFloor),
          r.createP50 !== undefined ? ms(r.createP50) : "–",
          r.errors ? `${r.errors} (${r.notes?.[0] ?? ""})` : 0,
        ]),
      ),
    );
  } else if (C) out.push("", `**Cold start**: failed: ${C.failed}`);

  const S = results.scale;
  if (S && !failed(S)) {
    out.push(
      "",
      `**Scale-out** (0 → ${meta.config.scale.concurrency} concurrent invokes of a handler that sleeps 200 ms; ${meta.config.scale.rounds} round(s), median shown)`,
      "",
    );
    out.push(
      table(
        ["system", "all returned (p50)", "worst", "environments created", "throttles (429)", "errors"],
        Object.entries(S).map(([id, r]) => [
          label[id] ?? id,
          ms(r.all.p50),
          ms(r.all.max),
          r.environmentsCreated ?? "–",
          r.throttles,
          r.errors ? `${r.errors} (${r.notes?.[0] ?? ""})` : 0,
        ]),
      ),
    );
  } else if (S) out.push("", `**Scale-out**: failed: ${S.failed}`);

  const D = results.density;
  if (D && !failed(D)) {
    out.push(
      "",
      `**Density** (${meta.config.density.environments} concurrent invokes holding their environment ${meta.config.density.holdMs} ms, then idle; memory summed over the server's descendant processes from /proc)`,
      "",
    );
    out.push(
      table(
        ["system", "idle environments", "processes", "RSS / environment (MB)", "PSS / environment (MB)"],
        Object.entries(D).map(([id, r]) => [
          label[id] ?? id,
          r.environments ?? (r.inProcess ? "n/a (in-process)" : "n/a (worker threads)"),
          r.processes,
          `${mb(r.rssPerEnv)}${r.growth ? " (growth of the one process / 100)" : ""}`,
          mb(r.pssPerEnv),
        ]),
      ),
    );
  } else if (D) out.push("", `**Density**: failed: ${D.failed}`);

  const M = results.multi;
  if (M && !failed(M)) {
    const c = meta.config.multi;
    out.push(
      "",
      `**Multi-concurrency** (nodejs22.x, ${c.concurrency} clients for ${c.durationMs} ms: one event per environment vs. a capacity provider with PerExecutionEnvironmentMaxConcurrency ${c.slots}; \`sleep\` waits ${c.sleepMs} ms)`,
      "",
    );
    const row = (r) =>
      r ? `${num(r.rps)} /s, ${r.environments} env${r.errors ? `, ${r.errors} errors` : ""}` : "–";
    out.push(
      table(
        [
          "system",
          "hello: one per env",
          `hello: ${c.slots} per env`,
          "sleep: one per env",
          `sleep: ${c.slots} per env`,
        ],
        Object.entries(M).map(([id, r]) =>
          r.na
            ? [label[id] ?? id, `n/a (${r.na})`, "", "", ""]
            : [
                label[id] ?? id,
                row(r["hello-one"]),
                row(r["hello-multi"]),
                row(r["sleep-one"]),
                row(r["sleep-multi"]),
              ],
        ),
      ),
    );
  } else if (M) out.push("", `**Multi-concurrency**: failed: ${M.failed}`);

  const A = results.async;
  if (A && !failed(A)) {
    out.push(
      "",
      `**Async** (${meta.config.async.events} \`Event\` invokes of a no-op handler from ${meta.config.async.senders} senders; then ${meta.config.async.trickle} single events ${meta.config.async.tricklePaceMs} ms apart, not backlogged; then a backlog of ${meta.config.async.events} queued behind ${meta.config.async.slots ?? 16} sleeping events that hold every async slot, drained with the senders idle)`,
      "",
    );
    out.push(
      table(
        [
          "system",
          "store",
          "enqueue/s",
          "all ran after (s)",
          "drain events/s",
          "backlog drain events/s",
          "enqueue→start p50 (backlogged)",
          "p99",
          "enqueue→start p50 (not backlogged)",
          "p99",
          "ran / sent",
        ],
        Object.entries(A).map(([id, r]) =>
          r.na
            ? [label[id] ?? id, "", `n/a (${r.na})`, "", "", "", "", "", "", "", ""]
            : [
                label[id] ?? id,
                r.store ?? "SQLite",
                num(r.enqueuePerSec),
                (r.drainMs / 1000).toFixed(2),
                num(r.drainPerSec),
                r.backlog?.drainPerSec !== undefined
                  ? `${num(r.backlog.drainPerSec)}${r.backlog.started < r.backlog.events ? ` (${r.backlog.started} / ${r.backlog.events} ran)` : ""}`
                  : "–",
                ms(r.enqueueToStart.p50),
                ms(r.enqueueToStart.p99),
                r.trickleEnqueueToStart ? ms(r.trickleEnqueueToStart.p50) : "–",
                r.trickleEnqueueToStart ? ms(r.trickleEnqueueToStart.p99) : "–",
                `${r.started} / ${r.events}${r.enqueueErrors ? ` (${r.enqueueErrors} enqueue errors)` : ""}`,
              ],
        ),
      ),
    );
  } else if (A) out.push("", `**Async**: failed: ${A.failed}`);

  const F = results.flood;
  if (F && !F.failed) {
    out.push(
      "",
      `**Flood** (another function's ${meta.config.flood.invokes} warm invokes, quiet vs while one function writes ${meta.config.flood.mb} MB without newlines per invoke, back to back; goal: within 2×)`,
      "",
      table(
        [
          "system",
          "quiet p50",
          "quiet p99",
          "flood p50",
          "flood p99",
          "× p50",
          "× p99",
          "floods",
          "errors",
          "",
        ],
        Object.entries(F).map(([id, r]) => [
          id,
          ms(r.quiet.p50),
          ms(r.quiet.p99),
          ms(r.flood.p50),
          ms(r.flood.p99),
          `${r.p50Ratio.toFixed(2)}×`,
          `${r.p99Ratio.toFixed(2)}×`,
          String(r.floods),
          String(r.quiet.errors + r.flood.errors + r.floodErrors),
          r.p99Ratio <= 2 ? "✅" : "❌",
        ]),
      ),
    );
  } else if (F) out.push("", `**Flood**: failed: ${F.failed}`);

  const U = results.url;
  if (U && !U.failed) {
    const c = meta.config.url;
    out.push(
      "",
      `**Function URLs** (the \`hello\` function through its public URL's path form — GET, payload 2.0 event, response mapping — beside signed \`Invoke\` on the same server: ${c.invokes} sequential requests over one connection, then ${c.concurrency} clients for ${c.durationMs} ms, per round)`,
      "",
      table(
        ["system", "via", "p50", "p99", "mean", `invokes/s at ${c.concurrency}`, "errors"],
        Object.entries(U).map(([key, r]) => {
          const [id, via] = key.split(" ");
          return [
            id,
            via === "url" ? "function URL" : "Invoke API",
            ms(r.p50),
            ms(r.p99),
            ms(r.mean),
            num(r.rps),
            r.errors,
          ];
        }),
        ["via"],
      ),
    );
  } else if (U) out.push("", `**Function URLs**: failed: ${U.failed}`);

  const DV = results.dev;
  if (DV && !failed(DV)) {
    const c = meta.config.dev;
    out.push(
      "",
      `**Dev reload** (\`lambent dev\` on a one-function template, plain JS handler, MemorySize ${c.memoryMb}: write index.js, invoke until the answer carries the edit; ${c.rounds} edits ${c.pauseMs} ms apart; "reload" is the watcher → \`PUT /_lambent/dev-mounts\` part, as \`lambent dev\` prints it; "edit → reloaded": from the write until that line reaches the bench)`,
      "",
      table(
        [
          "system",
          "edit → invoke p50",
          "p90",
          "max",
          "edit → reloaded p50",
          "reload p50",
          "reload p90",
          "invokes per edit",
          "errors",
        ],
        Object.entries(DV).map(([id, r]) => [
          r.floor
            ? "spawn-floor (a bare `node` spawn meanwhile: how loaded the machine was)"
            : (label[id] ?? id),
          ms(r.p50),
          ms(r.p90),
          ms(r.max),
          ms(r.editToReloaded?.p50),
          ms(r.reload?.p50),
          ms(r.reload?.p90),
          r.floor ? "–" : r.invokesPerRound.toFixed(1),
          r.floor ? "–" : r.errors ? `${r.errors} (${r.notes?.[0] ?? ""})` : 0,
        ]),
      ),
    );
  } else if (DV) out.push("", `**Dev reload**: failed: ${DV.failed}`);

  const goals = evaluate({ results, lambentIds, status });
  out.push("", "**Goals** (issues 9 and 17)", "");
  out.push(
    table(
      ["goal", "target", "system", "measured", ""],
      goals.map((g) => [g.goal, g.target, g.system, g.measured, g.verdict]),
      ["target", "system", "measured"],
    ),
  );
  return { markdown: out.join("\n"), goals };
}

function evaluate({ results, lambentIds, status }) {
  const goals = [];
  const add = (goal, target, system, value, measured, pass) =>
    goals.push({
      goal,
      target,
      system,
      value,
      measured,
      verdict: pass === null ? "n/a" : pass ? "✅" : "❌",
    });
  const stemIds = lambentIds.filter((id) => id.endsWith("-stem"));
  const plainIds = lambentIds.filter((id) => !id.endsWith("-stem"));
  const W = results.warm;
  for (const id of plainIds.concat(stemIds)) {
    if (!W?.[id] || !W.floor) continue;
    const v = W[id].p50 - W.floor.p50;
    add("warm overhead over floor, p50", "≤ 0.5 ms", id, v, `${ms(v)} ms`, v <= 0.5);
  }
  const T = results.throughput;
  for (const id of plainIds.concat(stemIds)) {
    if (!T?.[id]?.[16] || !T.sls?.[16]) continue;
    const v = T[id][16].rps / T.sls[16].rps;
    const vi = T["sls-inprocess"]?.[16] ? T[id][16].rps / T["sls-inprocess"][16].rps : Number.NaN;
    add(
      "throughput at c=16 vs serverless-offline",
      "≥ 2×",
      id,
      v,
      `${v.toFixed(2)}× default mode${Number.isFinite(vi) ? `, ${vi.toFixed(2)}× --useInProcess` : ""}`,
      v >= 2,
    );
  }
  const C = results.cold;
  const sf = C?.["spawn-floor"]?.p50;
  if (stemIds.length === 0) {
    const why = status.find((s) => s.id.endsWith("-stem"))?.status ?? "not run";
    add("cold start with stem cells, p50", "≤ 10 ms", "–", null, why, null);
  }
  for (const id of stemIds) {
    if (!C?.[id]) continue;
    add("cold start with stem cells, p50", "≤ 10 ms", id, C[id].p50, `${ms(C[id].p50)} ms`, C[id].p50 <= 10);
  }
  for (const id of plainIds) {
    if (!C?.[id] || !sf) continue;
    const v = C[id].p50 / sf;
    add(
      "cold start without stem cells, p50",
      "≤ 1.5× spawn floor",
      id,
      v,
      `${ms(C[id].p50)} ms = ${v.toFixed(2)}× ${ms(sf)} ms`,
      v <= 1.5,
    );
  }
  const S = results.scale;
  for (const id of lambentIds) {
    if (!S?.[id]) continue;
    const v = S[id].all.p50;
    add(
      "100 concurrent from zero, all returned",
      "≤ 2 s",
      id,
      v,
      `${(v / 1000).toFixed(2)} s`,
      v <= 2000 && S[id].errors === 0 && S[id].throttles === 0,
    );
  }
  const A = results.async;
  for (const id of plainIds) {
    if (!A?.[id]) continue;
    const store = A[id].store ?? "SQLite";
    if (A[id].na) {
      add(`async drain on ${store}`, "≥ 2000 events/s", id, null, `n/a (${A[id].na})`, null);
      continue;
    }
    add(
      `async drain on ${store}`,
      "≥ 2000 events/s",
      id,
      A[id].drainPerSec,
      `${num(A[id].drainPerSec)} events/s`,
      A[id].drainPerSec >= 2000 && A[id].drained,
    );
    const b = A[id].backlog;
    if (b?.drainPerSec !== undefined)
      add(
        `async backlog drain on ${store} (senders idle)`,
        "≥ 2000 events/s",
        id,
        b.drainPerSec,
        `${num(b.drainPerSec)} events/s`,
        b.drainPerSec >= 2000 && b.started === b.events,
      );
    const t = A[id].trickleEnqueueToStart;
    if (t?.p50 !== undefined)
      add(
        `async enqueue→start p50, not backlogged (${store})`,
        "≤ 50 ms",
        id,
        t.p50,
        `${ms(t.p50)} ms`,
        t.p50 <= 50 && A[id].trickle.started === A[id].trickle.sent,
      );
  }
  const DV = results.dev;
  for (const id of lambentIds) {
    if (!DV?.[id] || failed(DV) || DV[id].floor) continue;
    const v = DV[id].p50;
    add(
      "dev: edit → first invoke seeing it, p50",
      "≤ 300 ms",
      id,
      v,
      `${ms(v)} ms`,
      v <= 300 && DV[id].errors === 0,
    );
  }
  return goals;
}
