/** Lambda ARNs and the forms in which an operation may name a function. */
import { ACCOUNT_ID } from "../config.js";
import { constraintViolation, InvalidParameterValue } from "../errors.js";

export const FUNCTION_NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const QUALIFIER_RE = /^(\$LATEST|[a-zA-Z0-9$_-]{1,128})$/;
const FULL_ARN_RE =
  /^arn:aws[a-zA-Z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]+)(?::([a-zA-Z0-9$_-]+))?$/;
const PARTIAL_ARN_RE = /^(\d{12}):function:([a-zA-Z0-9_-]+)(?::([a-zA-Z0-9$_-]+))?$/;
const NAME_QUALIFIER_RE = /^([a-zA-Z0-9_-]+)(?::([a-zA-Z0-9$_-]+))?$/;

export interface FunctionRef {
  name: string;
  qualifier?: string;
}

export function functionArn(region: string, name: string, qualifier?: string): string {
  const base = `arn:aws:lambda:${region}:${ACCOUNT_ID}:function:${name}`;
  return qualifier ? `${base}:${qualifier}` : base;
}

/**
 * Parse a FunctionName as Lambda accepts it: `name`, `name:qualifier`,
 * `123456789012:function:name[:qualifier]` or a full ARN. An explicit
 * `Qualifier` must agree with one carried in the name.
 */
export function parseFunctionRef(
  input: unknown,
  explicitQualifier?: string,
  member = "functionName",
  maxLength = 170,
): FunctionRef {
  if (typeof input !== "string" || input.length === 0) {
    throw constraintViolation(member, input ?? "null", "Member must not be null");
  }
  if (input.length > maxLength) {
    throw constraintViolation(member, input, `Member must have length less than or equal to ${maxLength}`);
  }
  const full = FULL_ARN_RE.exec(input);
  const partial = full ? null : PARTIAL_ARN_RE.exec(input);
  const plain = full || partial ? null : NAME_QUALIFIER_RE.exec(input);
  const name = full?.[3] ?? partial?.[2] ?? plain?.[1];
  const carried = full?.[4] ?? partial?.[3] ?? plain?.[2];
  if (name === undefined) {
    throw constraintViolation(
      member,
      input,
      "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?",
    );
  }
  if (!FUNCTION_NAME_RE.test(name)) {
    throw constraintViolation(member, input, "Member must have length less than or equal to 64");
  }
  const qualifier = explicitQualifier ?? carried;
  if (explicitQualifier !== undefined && carried !== undefined && explicitQualifier !== carried) {
    throw InvalidParameterValue(
      "The derived qualifier from the function name does not match the specified qualifier.",
    );
  }
  if (qualifier !== undefined) validateQualifier(qualifier);
  return qualifier === undefined ? { name } : { name, qualifier };
}

export function validateQualifier(qualifier: string): void {
  if (!QUALIFIER_RE.test(qualifier)) {
    throw constraintViolation(
      "qualifier",
      qualifier,
      "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
    );
  }
}

/** A resource ARN as TagResource and friends take it. */
export function parseFunctionArn(arn: string): FunctionRef {
  const m = FULL_ARN_RE.exec(arn);
  if (!m) throw InvalidParameterValue(`Invalid ARN: ${arn}`);
  return m[4] ? { name: m[3] as string, qualifier: m[4] } : { name: m[3] as string };
}
