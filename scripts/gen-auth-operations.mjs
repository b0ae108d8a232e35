// Generates src/auth/lambda-operations.ts from the Lambda API model: every
// operation's name, HTTP method and request URI, which api/auth.ts maps to an
// IAM action and resource. Run: node scripts/gen-auth-operations.mjs [model.json]
import { readFileSync, writeFileSync } from "node:fs";

const modelPath =
  process.argv[2] ??
  new URL("../../shared/aws-models/lambda-2015-03-31.service-2.json", import.meta.url).pathname;
const model = JSON.parse(readFileSync(modelPath, "utf8"));
const rows = Object.entries(model.operations)
  .map(([name, op]) => [name, op.http.method, op.http.requestUri])
  .sort((a, b) => (a[0] < b[0] ? -1 : 1));
const out = `/**
 * Every Lambda API operation as [name, HTTP method, request URI] — generated
 * from ${model.metadata.apiVersion} by scripts/gen-auth-operations.mjs; do not edit.
 */
export const LAMBDA_OPERATIONS: ReadonlyArray<readonly [string, string, string]> = [
${rows.map((r) => `  ${JSON.stringify(r)},`).join("\n")}
];
`;
writeFileSync(new URL("../src/auth/lambda-operations.ts", import.meta.url), out);
console.log(`${rows.length} operations`);
