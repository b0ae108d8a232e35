import type { Engine } from "../engine.js";
import type { MigrationDb } from "./index.js";

/**
 * Metrics (AWS/Lambda and EMF custom metrics), one row per series and minute: the series is its
 * namespace, metric name and dimensions (canonical JSON, names sorted). Servers sharing a
 * PostgreSQL add their minutes up (upserts with +=). `metric_buckets` holds each minute's values as
 * counts in fixed log-scale buckets (metrics/histogram.ts), enough to answer percentiles.
 */
export const m0017Metrics = (engine: Engine) => ({
  async up(db: MigrationDb) {
    const real = engine === "postgres" ? "double precision" : "real";
    await db.schema
      .createTable("metric_data")
      .addColumn("namespace", "text", (c) => c.notNull())
      .addColumn("metric_name", "text", (c) => c.notNull())
      .addColumn("dimensions", "text", (c) => c.notNull())
      /** Start of the minute (epoch ms). */
      .addColumn("minute", "bigint", (c) => c.notNull())
      .addColumn("unit", "text", (c) => c.notNull())
      .addColumn("sample_count", real, (c) => c.notNull())
      .addColumn("sum", real, (c) => c.notNull())
      .addColumn("min", real, (c) => c.notNull())
      .addColumn("max", real, (c) => c.notNull())
      .addPrimaryKeyConstraint("metric_data_pk", ["namespace", "metric_name", "dimensions", "minute"])
      .execute();
    await db.schema.createIndex("metric_data_minute").on("metric_data").column("minute").execute();
    await db.schema
      .createTable("metric_buckets")
      .addColumn("namespace", "text", (c) => c.notNull())
      .addColumn("metric_name", "text", (c) => c.notNull())
      .addColumn("dimensions", "text", (c) => c.notNull())
      .addColumn("minute", "bigint", (c) => c.notNull())
      .addColumn("bucket", "integer", (c) => c.notNull())
      .addColumn("count", real, (c) => c.notNull())
      .addPrimaryKeyConstraint("metric_buckets_pk", [
        "namespace",
        "metric_name",
        "dimensions",
        "minute",
        "bucket",
      ])
      .execute();
    await db.schema.createIndex("metric_buckets_minute").on("metric_buckets").column("minute").execute();
  },
});
