/** Invoke through the AWS SDK and decode what comes back. */
import { InvokeCommand, type InvokeCommandInput, type LambdaClient } from "@aws-sdk/client-lambda";

export interface Invoked {
  status: number | undefined;
  functionError: string | undefined;
  executedVersion: string | undefined;
  /** The payload as text. */
  text: string;
  /** The payload parsed as JSON (undefined when it is not JSON). */
  json: unknown;
  /** The decoded X-Amz-Log-Result. */
  log: string | undefined;
}

export async function invoke(
  lambda: LambdaClient,
  name: string,
  event: unknown = {},
  extra: Partial<InvokeCommandInput> = {},
): Promise<Invoked> {
  const out = await lambda.send(
    new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(event)), ...extra }),
  );
  const text = out.Payload ? Buffer.from(out.Payload).toString("utf8") : "";
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return {
    status: out.StatusCode,
    functionError: out.FunctionError,
    executedVersion: out.ExecutedVersion,
    text,
    json,
    log: out.LogResult ? Buffer.from(out.LogResult, "base64").toString("utf8") : undefined,
  };
}
