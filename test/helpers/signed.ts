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
