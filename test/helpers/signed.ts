/** fetch() signed with SigV4 (the development credentials unless told otherwise), for Lambent's own endpoints. */
import { signedFetch as cliSignedFetch } from "../../src/cli/signed-fetch.js";

export const DEV_CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

export function signedFetch(
  url: string,
  init: { method?: string; body?: Buffer | string; headers?: Record<string, string> } = {},
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = DEV_CREDENTIALS,
): Promise<Response> {
  return cliSignedFetch(url, init, credentials);
}

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
  arn: string;
}

/**
 * `POST /_lambent/keys` (signed with the development credentials): a new user's access key, with an
 * identity policy of these statements (none: a key whose policy allows nothing).
 */
export async function createAccessKey(
  serverUrl: string,
  userName: string,
  statements: unknown[] | null,
): Promise<AccessKey> {
  const res = await signedFetch(`${serverUrl}/_lambent/keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      UserName: userName,
      ...(statements ? { Policy: JSON.stringify({ Version: "2012-10-17", Statement: statements }) } : {}),
    }),
  });
  if (res.status !== 201) throw new Error(`POST /_lambent/keys: ${res.status} ${await res.text()}`);
  const k = (
    (await res.json()) as { AccessKey: { AccessKeyId: string; SecretAccessKey: string; Arn: string } }
  ).AccessKey;
  return { accessKeyId: k.AccessKeyId, secretAccessKey: k.SecretAccessKey, arn: k.Arn };
}
