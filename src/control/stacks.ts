/**
 * Stacks: what `lambent deploy` remembers of a deployed template — its status,
 * parameters, outputs and, per logical id, the resource it made (type,
 * physical id, attributes, the properties last applied). The deploy itself
 * runs in the client through the public Lambda and Scheduler APIs; the stack
 * record lives here so any client (and `lambent stacks`) sees the same state.
 *
 * Every write names the revision it read: a second deploy of the same stack
 * running at the same time gets a ConflictException instead of interleaving.
 * While a deploy runs, the record also carries its `Pending` deployment (plan,
 * steps done, the step in flight), so a deploy that was killed can be resumed.
 */
import { randomUUID } from "node:crypto";
import { ACCOUNT_ID } from "../config.js";
import { constraintViolation, LambdaError, ResourceNotFound, ValidationError } from "../errors.js";
import { objectColumn } from "../store/columns.js";
import type { StacksTable } from "../store/schema.js";
import type { Store } from "../store/store.js";

/** CloudFormation's stack name rule. */
export const STACK_NAME_RE = /^[a-zA-Z][-a-zA-Z0-9]{0,127}$/;
/** Largest stack document kept (resources, their properties, outputs). */
export const MAX_STACK_DOCUMENT_BYTES = 4 * 1024 * 1024;

export const STACK_STATUSES = new Set([
  "CREATE_IN_PROGRESS",
  "CREATE_COMPLETE",
  "CREATE_FAILED",
  "ROLLBACK_IN_PROGRESS",
  "ROLLBACK_COMPLETE",
  "ROLLBACK_FAILED",
  "UPDATE_IN_PROGRESS",
  "UPDATE_COMPLETE",
  "UPDATE_COMPLETE_CLEANUP_FAILED",
  "UPDATE_ROLLBACK_IN_PROGRESS",
  "UPDATE_ROLLBACK_COMPLETE",
  "UPDATE_ROLLBACK_FAILED",
  "DELETE_IN_PROGRESS",
  "DELETE_FAILED",
]);

const StackConflict = (m: string) => new LambdaError("ConflictException", 409, m);

export interface StackSummary {
  StackName: string;
  StackId: string;
  Status: string;
  StatusReason?: string;
  CreationTime: string;
  LastUpdatedTime: string;
  Revision: number;
  ResourceCount: number;
}

export interface StackRecord extends StackSummary {
  Parameters: Record<string, unknown>;
  Resources: Record<string, unknown>;
  Outputs: Record<string, unknown>;
  /** A deploy that started and has not finished (deploy/deploy.ts PendingDeployment). */
  Pending?: Record<string, unknown>;
}

export function stackName(raw: string): string {
  if (!STACK_NAME_RE.test(raw)) {
    throw constraintViolation(
      "stackName",
      raw,
      "Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]* and have length less than or equal to 128",
    );
  }
  return raw;
}

function objectMember(body: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = body[key] ?? {};
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw ValidationError(`${key} must be a JSON object.`);
  }
  return v as Record<string, unknown>;
}

export class StackService {
  constructor(
    private readonly store: Store,
    private readonly region: string,
  ) {}

  private record(row: StacksTable): StackRecord {
    const doc = objectColumn("stacks", "document", row.document);
    const resources = (doc.Resources ?? {}) as Record<string, unknown>;
    return {
      ...this.summaryOf(row, Object.keys(resources).length),
      Parameters: (doc.Parameters ?? {}) as Record<string, unknown>,
      Resources: resources,
      Outputs: (doc.Outputs ?? {}) as Record<string, unknown>,
      ...(doc.Pending !== undefined ? { Pending: doc.Pending as Record<string, unknown> } : {}),
    };
  }

  private summaryOf(row: StacksTable, resourceCount: number): StackSummary {
    return {
      StackName: row.name,
      StackId: row.stack_id,
      Status: row.status,
      ...(row.status_reason ? { StatusReason: row.status_reason } : {}),
      CreationTime: new Date(row.created_at).toISOString(),
      LastUpdatedTime: new Date(row.last_modified).toISOString(),
      Revision: Number(row.revision),
      ResourceCount: resourceCount,
    };
  }

  async list(): Promise<StackSummary[]> {
    const rows = await this.store.db.selectFrom("stacks").selectAll().orderBy("name").execute();
    return rows.map((r) => {
      const doc = objectColumn("stacks", "document", r.document);
      return this.summaryOf(r, Object.keys((doc.Resources ?? {}) as object).length);
    });
  }

  async get(name: string): Promise<StackRecord> {
    const row = await this.store.db
      .selectFrom("stacks")
      .selectAll()
      .where("name", "=", stackName(name))
      .executeTakeFirst();
    if (!row) throw ResourceNotFound(`Stack with id ${name} does not exist`);
    return this.record(row);
  }

  /**
   * Write a stack's state. `ExpectedRevision` is the revision the writer read (0: the stack must
   * not exist yet); a different current revision is a ConflictException.
   */
  async put(name: string, body: Record<string, unknown>, region = this.region): Promise<StackRecord> {
    stackName(name);
    const expected = body.ExpectedRevision;
    if (typeof expected !== "number" || !Number.isInteger(expected) || expected < 0) {
      throw ValidationError("ExpectedRevision must be a non-negative integer (0 for a new stack).");
    }
    const status = body.Status;
    if (typeof status !== "string" || !STACK_STATUSES.has(status)) {
      throw ValidationError(`Status must be one of ${[...STACK_STATUSES].join(", ")}.`);
    }
    const reason = body.StatusReason;
    if (reason !== undefined && (typeof reason !== "string" || reason.length > 4096)) {
      throw ValidationError("StatusReason must be a string of at most 4096 characters.");
    }
    const document = JSON.stringify({
      Parameters: objectMember(body, "Parameters"),
      Resources: objectMember(body, "Resources"),
      Outputs: objectMember(body, "Outputs"),
      ...(body.Pending !== undefined ? { Pending: objectMember(body, "Pending") } : {}),
    });
    if (Buffer.byteLength(document) > MAX_STACK_DOCUMENT_BYTES) {
      throw ValidationError(`The stack document must be smaller than ${MAX_STACK_DOCUMENT_BYTES} bytes.`);
    }
    const now = Date.now();
    return this.store.db.transaction().execute(async (tx) => {
      const row = await tx.selectFrom("stacks").selectAll().where("name", "=", name).executeTakeFirst();
      const current = row ? Number(row.revision) : 0;
      if (current !== expected) {
        throw StackConflict(
          row
            ? `Stack ${name} is at revision ${current}, not ${expected}: another deploy changed it. Describe it and try again.`
            : `Stack ${name} does not exist (revision ${expected} was expected).`,
        );
      }
      const values = {
        status,
        status_reason: typeof reason === "string" ? reason : null,
        revision: current + 1,
        document,
        last_modified: now,
      };
      if (row) {
        const res = await tx
          .updateTable("stacks")
          .set(values)
          .where("name", "=", name)
          .where("revision", "=", current)
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) !== 1) throw StackConflict(`Stack ${name} changed meanwhile.`);
      } else {
        // Two first deploys of one name at once: the second insert finds the row (a conflict, not a 500).
        const taken = await tx
          .insertInto("stacks")
          .values({
            name,
            stack_id: `arn:aws:cloudformation:${region}:${ACCOUNT_ID}:stack/${name}/${randomUUID()}`,
            created_at: now,
            ...values,
          })
          .onConflict((oc) => oc.column("name").doNothing())
          .executeTakeFirst();
        if (Number(taken.numInsertedOrUpdatedRows ?? 0) !== 1)
          throw StackConflict(`Stack ${name} was created meanwhile.`);
      }
      const written = await tx
        .selectFrom("stacks")
        .selectAll()
        .where("name", "=", name)
        .executeTakeFirstOrThrow();
      return this.record(written);
    });
  }

  /** Forget a stack (its resources are deleted by the client first). */
  async delete(name: string, expectedRevision: number | undefined): Promise<void> {
    stackName(name);
    let q = this.store.db.deleteFrom("stacks").where("name", "=", name);
    if (expectedRevision !== undefined) q = q.where("revision", "=", expectedRevision);
    const res = await q.executeTakeFirst();
    if (Number(res.numDeletedRows) === 1) return;
    const exists = await this.store.db
      .selectFrom("stacks")
      .select("revision")
      .where("name", "=", name)
      .executeTakeFirst();
    if (!exists) throw ResourceNotFound(`Stack with id ${name} does not exist`);
    throw StackConflict(`Stack ${name} is at revision ${exists.revision}, not ${expectedRevision}.`);
  }
}
