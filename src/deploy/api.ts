/**
 * The deploy's client of a Lambent server: Lambda and Scheduler operations by
 * name, laid out on the wire from the generated API models (path, query and
 * body members), and the `/_lambent/stacks` routes. Every request is SigV4
 * signed with the user's credentials (cli/signed-fetch.ts): the deploy has no
 * way in that `aws lambda …` does not have.
 */
import { OPERATIONS, type OperationModel, SHAPES, type ShapeModel } from "../api/generated/lambda-model.js";
import {
  SCHEDULER_OPERATIONS,
  SCHEDULER_SHAPES,
  SCHEDULER_SIGNING_NAME,
} from "../api/generated/scheduler-model.js";
import { signedFetch } from "../cli/signed-fetch.js";

/** An error answer of the server, with AWS's error type. */
export class ApiError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(`${type}: ${message}`);
    this.name = "ApiError";
  }
}

export type Json = Record<string, unknown>;

/**
 * Template values as the API's model types them: CloudFormation hands every parameter over as
 * text (a `Number` parameter is "256"), and converts where a property is a number or boolean.
 */
export function coerce(
  value: unknown,
  shapeName: string,
  shapes: Record<string, ShapeModel>,
  depth = 0,
): unknown {
  const shape = shapes[shapeName];
  if (!shape || depth > 32) return value;
  switch (shape.type) {
    case "integer":
    case "long":
    case "double":
      return typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))
        ? Number(value)
        : value;
    case "boolean":
      return value === "true" ? true : value === "false" ? false : value;
    case "string":
      return typeof value === "number" || typeof value === "boolean" ? String(value) : value;
    case "list":
      return Array.isArray(value) && shape.member
        ? value.map((v) => coerce(v, shape.member as string, shapes, depth + 1))
        : value;
    case "map":
      if (typeof value !== "object" || value === null || Array.isArray(value) || !shape.value) return value;
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, coerce(v, shape.value as string, shapes, depth + 1)]),
      );
    case "structure": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return value;
      const members = shape.members ?? {};
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
          k,
          members[k] ? coerce(v, (members[k] as { shape: string }).shape, shapes, depth + 1) : v,
        ]),
      );
    }
    default:
      return value;
  }
}

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export class LambentClient {
  readonly endpoint: string;

  constructor(
    endpoint: string,
    readonly region: string,
    private readonly credentials?: Credentials,
  ) {
    this.endpoint = endpoint.replace(/\/+$/, "");
  }

  private async send(method: string, path: string, body: unknown, service?: string): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const res = await signedFetch(
      `${this.endpoint}${path}`,
      {
        method,
        ...(payload !== undefined ? { body: payload, headers: { "content-type": "application/json" } } : {}),
        ...(service ? { service } : {}),
        region: this.region,
      },
      ...(this.credentials ? [this.credentials] : []),
    );
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 500);
      try {
        const j = JSON.parse(text) as { Message?: string; message?: string };
        message = j.Message ?? j.message ?? message;
      } catch {}
      throw new ApiError(
        res.headers.get("x-amzn-errortype")?.split(":")[0] ?? `HTTP${res.status}`,
        res.status,
        message,
      );
    }
    if (text === "") return {};
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  private call(
    op: OperationModel | undefined,
    shapes: Record<string, ShapeModel>,
    name: string,
    input: Json,
    service?: string,
  ): Promise<Json> {
    if (!op) throw new Error(`no operation ${name}`);
    const members = op.input ? (shapes[op.input]?.members ?? {}) : {};
    let path = op.path;
    const query = new URLSearchParams();
    if (op.discriminator) query.set(op.discriminator[0], op.discriminator[1]);
    const body: Json = {};
    for (const [k, v] of Object.entries(input)) {
      if (v === undefined) continue;
      const m = members[k];
      const wire = m?.locationName ?? k;
      if (m?.location === "uri")
        path = path.replace(new RegExp(`\\{${wire}\\+?\\}`), encodeURIComponent(String(v)));
      else if (m?.location === "querystring") query.set(wire, String(v));
      else body[k] = m ? coerce(v, m.shape, shapes) : v;
    }
    const q = query.toString();
    const hasBody = op.method === "POST" || op.method === "PUT";
    return this.send(
      op.method,
      `${path}${q ? `?${q}` : ""}`,
      hasBody ? body : undefined,
      service,
    ) as Promise<Json>;
  }

  /** A Lambda operation by name (CreateFunction, PublishVersion, …). */
  lambda(operation: string, input: Json): Promise<Json> {
    return this.call(OPERATIONS[operation], SHAPES, operation, input);
  }

  /** An EventBridge Scheduler operation by name (signed for `scheduler`). */
  scheduler(operation: string, input: Json): Promise<Json> {
    return this.call(
      SCHEDULER_OPERATIONS[operation],
      SCHEDULER_SHAPES,
      operation,
      input,
      SCHEDULER_SIGNING_NAME,
    );
  }

  listStacks(): Promise<Json> {
    return this.send("GET", "/_lambent/stacks", undefined) as Promise<Json>;
  }

  /** A stack's record, or undefined when there is none. */
  async getStack(name: string): Promise<Json | undefined> {
    try {
      return (await this.send("GET", `/_lambent/stacks/${encodeURIComponent(name)}`, undefined)) as Json;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  putStack(name: string, body: Json): Promise<Json> {
    return this.send("PUT", `/_lambent/stacks/${encodeURIComponent(name)}`, body) as Promise<Json>;
  }

  async deleteStack(name: string, revision: number): Promise<void> {
    await this.send("DELETE", `/_lambent/stacks/${encodeURIComponent(name)}?Revision=${revision}`, undefined);
  }

  /** Run a function's $LATEST from a folder under the server's --dev-root (again: restart its environments). */
  async putDevMount(functionName: string, path: string): Promise<void> {
    await this.send("PUT", `/_lambent/dev-mounts/${encodeURIComponent(functionName)}`, { Path: path });
  }

  async deleteDevMount(functionName: string): Promise<void> {
    await this.send("DELETE", `/_lambent/dev-mounts/${encodeURIComponent(functionName)}`, undefined);
  }

  /** A function's log events (the endpoint `lambent logs` reads), from a time or after an event id. */
  async logEvents(
    functionName: string,
    from: { since: number } | { after: number },
  ): Promise<Array<{ id: number; timestamp: number; message: string }>> {
    const q = "since" in from ? `since=${from.since}` : `after=${from.after}`;
    const page = (await this.send(
      "GET",
      `/_lambent/logs/${encodeURIComponent(functionName)}?limit=1000&${q}`,
      undefined,
    )) as { events?: Array<{ id: number; timestamp: number; message: string }> };
    return page.events ?? [];
  }

  /** Set the identity policy of an execution role (`lambent roles put`). */
  async putRolePolicy(role: string, policy: unknown): Promise<void> {
    await this.send("PUT", `/_lambent/roles/${encodeURIComponent(role)}`, policy);
  }

  async deleteRolePolicy(role: string): Promise<void> {
    await this.send("DELETE", `/_lambent/roles/${encodeURIComponent(role)}`, undefined);
  }

  /** Download a stored package (a Code.Location the server gave). */
  async download(url: string): Promise<Buffer> {
    const res = await signedFetch(
      url,
      { region: this.region },
      ...(this.credentials ? [this.credentials] : []),
    );
    if (!res.ok) throw new ApiError(`HTTP${res.status}`, res.status, `could not download ${url}`);
    return Buffer.from(await res.arrayBuffer());
  }
}
