/** The two store engines and the column types that differ between them. */
import { type ColumnDataType, type Expression, sql } from "kysely";

export type Engine = "sqlite" | "postgres";

export function binaryType(engine: Engine): ColumnDataType | Expression<unknown> {
  return engine === "postgres" ? sql`bytea` : "blob";
}

/** An auto-increment primary key column definition. */
export function serialType(engine: Engine): ColumnDataType | Expression<unknown> {
  return engine === "postgres" ? sql`bigserial` : "integer";
}
