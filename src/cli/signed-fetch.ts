/**
 * fetch() with SigV4, for every CLI command that talks to a server. The
 * credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION), else the development
 * credentials `test`/`test` that a loopback-only server accepts.
 */
import { signRequest } from "../auth/sigv4.js";

export function cliCredentials(env: NodeJS.ProcessEnv = process.env) {
  const accessKeyId = env.AWS_ACCESS_KEY_ID ?? "test";
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY ?? "test";
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
  };
}

export function cliRegion(env: NodeJS.ProcessEnv = process.env): string {
  return env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? "us-east-1";
}

export async function signedFetch(
  url: string,
  init: {
    method?: string;
    body?: Buffer | string;
    headers?: Record<string, string>;
    /** The signing name (default `lambda`; `scheduler` for the Scheduler API). */
    service?: string;
    /** The signing region (default $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1). */
    region?: string;
  } = {},
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = cliCredentials(),
): Promise<Response> {
  const method = init.method ?? "GET";
  const headers = signRequest({
    method,
    url: new URL(url),
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
    region: init.region ?? cliRegion(),
    ...(init.service ? { service: init.service } : {}),
    credentials,
  });
  const body = typeof init.body === "string" ? init.body : init.body ? new Uint8Array(init.body) : undefined;
  return fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
}
