/**
 * The console's only way to the server: the same public APIs every other client uses (Lambda's
 * REST API, CloudWatch Logs' JSON 1.1, CloudWatch's GetMetricData (JSON 1.0), Lambent's `/_lambent/*`
 * status endpoints), each call signed with SigV4 by the logged-in access key, so the key's
 * policies decide what the console may show and do. The key lives in sessionStorage only: it is
 * gone when the tab closes.
 */
import { type Credentials, sign } from "./sigv4.js";

export interface Session extends Credentials {
  region: string;
}

const STORAGE_KEY = "lambent.console.session";

export function loadSession(): Session | undefined {
  const raw = sessionStorage.getItem(STORAGE_KEY);
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Partial<Session>;
    if (
      typeof s.accessKeyId === "string" &&
      typeof s.secretAccessKey === "string" &&
      typeof s.region === "string"
    ) {
      return s as Session;
    }
  } catch {
    // A damaged entry is no session.
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return undefined;
}

export function saveSession(s: Session): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(s));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** An AWS-shaped error answer: its type (e.g. AccessDeniedException) and message. */
export class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Call {
  method: string;
  path: string;
  service: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: string;
}

async function errorOf(res: Response, text: string): Promise<ApiError> {
  let type = res.headers.get("x-amzn-errortype")?.split(":")[0] ?? "";
  let message = text;
  try {
    const j = JSON.parse(text) as { __type?: string; Type?: string; message?: string; Message?: string };
    type ||= (j.__type ?? "").split("#").pop() ?? "";
    message = j.message ?? j.Message ?? text;
  } catch {
    // Not JSON: the text is the message.
  }
  return new ApiError(type || `HTTP ${res.status}`, message, res.status);
}

export class Api {
  constructor(readonly session: Session) {}

  async raw(call: Call): Promise<Response> {
    const url = new URL(call.path, location.origin);
    for (const [k, v] of Object.entries(call.query ?? {})) url.searchParams.set(k, v);
    const body = encoder.encode(call.body ?? "");
    const headers = await sign({
      method: call.method,
      url,
      service: call.service,
      region: this.session.region,
      headers: call.headers ?? {},
      body,
      credentials: this.session,
    });
    return fetch(url, {
      method: call.method,
      headers,
      ...(call.body !== undefined ? { body } : {}),
      credentials: "omit",
      cache: "no-store",
    });
  }

  private async json<T>(call: Call): Promise<T> {
    const res = await this.raw(call);
    const text = await res.text();
    if (!res.ok) throw await errorOf(res, text);
    return (text ? JSON.parse(text) : {}) as T;
  }

  /** A Lambda REST API call (service `lambda`). */
  lambda<T>(method: string, path: string, query?: Record<string, string>, body?: unknown): Promise<T> {
    return this.json<T>({
      method,
      path,
      service: "lambda",
      ...(query ? { query } : {}),
      ...(body !== undefined
        ? { body: JSON.stringify(body), headers: { "content-type": "application/json" } }
        : {}),
    });
  }

  /** A CloudWatch Logs operation (JSON 1.1, service `logs`). */
  logs<T>(operation: string, input: unknown): Promise<T> {
    return this.json<T>({
      method: "POST",
      path: "/",
      service: "logs",
      headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `Logs_20140328.${operation}` },
      body: JSON.stringify(input),
    });
  }

  /** One of Lambent's own status endpoints (`/_lambent/queue`, …), signed like Lambda's. */
  lambent<T>(path: string): Promise<T> {
    return this.json<T>({ method: "GET", path: `/_lambent/${path}`, service: "lambda" });
  }

  /** Invoke (RequestResponse) with `LogType: Tail`: the answer, the function error and the log tail. */
  async invoke(functionName: string, qualifier: string, payload: string): Promise<InvokeResult> {
    const res = await this.raw({
      method: "POST",
      path: `/2015-03-31/functions/${encodeURIComponent(functionName)}/invocations`,
      service: "lambda",
      ...(qualifier ? { query: { Qualifier: qualifier } } : {}),
      headers: { "x-amz-log-type": "Tail", "content-type": "application/json" },
      body: payload,
    });
    const text = await res.text();
    if (!res.ok) throw await errorOf(res, text);
    const tail = res.headers.get("x-amz-log-result");
    return {
      statusCode: res.status,
      payload: text,
      functionError: res.headers.get("x-amz-function-error") ?? undefined,
      executedVersion: res.headers.get("x-amz-executed-version") ?? undefined,
      log: tail ? decoder.decode(Uint8Array.from(atob(tail), (c) => c.charCodeAt(0))) : "",
    };
  }

  /** CloudWatch GetMetricData (MetricStat queries) in CloudWatch's JSON 1.0 protocol (service `monitoring`). */
  async getMetricData(queries: MetricQuery[], start: Date, end: Date): Promise<MetricResult[]> {
    const input: Record<string, unknown> = {
      StartTime: Math.floor(start.getTime() / 1000),
      EndTime: Math.ceil(end.getTime() / 1000),
      ScanBy: "TimestampAscending",
      MetricDataQueries: queries.map((q) => ({
        Id: q.id,
        MetricStat: {
          Metric: {
            Namespace: q.namespace ?? "AWS/Lambda",
            MetricName: q.metric,
            Dimensions: Object.entries(q.dimensions).map(([Name, Value]) => ({ Name, Value })),
          },
          Period: q.period,
          Stat: q.stat,
        },
      })),
    };
    const out = new Map<string, MetricResult>();
    for (let page = 0; page < 20; page++) {
      const answer = await this.json<{
        MetricDataResults?: Array<{ Id?: string; Timestamps?: number[]; Values?: number[] }>;
        NextToken?: string;
      }>({
        method: "POST",
        path: "/",
        service: "monitoring",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "GraniteServiceVersion20100801.GetMetricData",
        },
        body: JSON.stringify(input),
      });
      for (const r of answer.MetricDataResults ?? []) {
        const id = r.Id ?? "";
        const entry = out.get(id) ?? { id, timestamps: [], values: [] };
        entry.timestamps.push(...(r.Timestamps ?? []).map((t) => t * 1000));
        entry.values.push(...(r.Values ?? []));
        out.set(id, entry);
      }
      if (!answer.NextToken) break;
      input.NextToken = answer.NextToken;
    }
    return queries.map((q) => out.get(q.id) ?? { id: q.id, timestamps: [], values: [] });
  }
}

export interface InvokeResult {
  statusCode: number;
  payload: string;
  functionError: string | undefined;
  executedVersion: string | undefined;
  log: string;
}

export interface MetricQuery {
  id: string;
  namespace?: string;
  metric: string;
  dimensions: Record<string, string>;
  period: number;
  stat: string;
}

export interface MetricResult {
  id: string;
  timestamps: number[];
  values: number[];
}
