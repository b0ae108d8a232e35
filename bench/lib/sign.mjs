// Every request the bench sends is SigV4-signed with the development credentials, as the AWS SDK
// signs each of its requests (serverless-offline ignores the headers; Lambent verifies them).
import { signRequest } from "../../dist/auth/sigv4.js";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

/** The headers to send for `method origin+path` with this body (the given headers included). */
export function signedHeaders(origin, path, method, body = "", headers = {}) {
  return signRequest({
    method,
    url: new URL(origin + path),
    headers,
    body,
    region: "us-east-1",
    credentials,
  });
}
