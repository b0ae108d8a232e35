/**
 * Lambda's error types. Every error a client can see is a LambdaError: it
 * carries the AWS error type (sent in `x-amzn-ErrorType` and the body's
 * `Type`/`Message`), the HTTP status, and any extra body fields. `api/` turns
 * them into responses in one place.
 */
export class LambdaError extends Error {
  constructor(
    readonly type: string,
    readonly statusCode: number,
    message: string,
    /** Extra members of the error body (e.g. `Reason` for throttles). */
    readonly fields: Record<string, unknown> = {},
    /** Extra response headers (e.g. `Retry-After`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = type;
  }

  /** "User" for client faults (4xx), "Service" for ours. */
  get faultType(): "User" | "Service" {
    return this.statusCode >= 500 ? "Service" : "User";
  }
}

const make =
  (type: string, status: number) =>
  (message: string, fields?: Record<string, unknown>, headers?: Record<string, string>) =>
    new LambdaError(type, status, message, fields, headers);

export const InvalidParameterValue = make("InvalidParameterValueException", 400);
export const InvalidRequestContent = make("InvalidRequestContentException", 400);
/** A JSON-protocol body (CloudWatch, CloudWatch Logs) that does not deserialize into its shape. */
export const Serialization = make("SerializationException", 400);
export const ResourceNotFound = make("ResourceNotFoundException", 404);
export const ResourceConflict = make("ResourceConflictException", 409);
export const ResourceInUse = make("ResourceInUseException", 400);
export const PreconditionFailed = make("PreconditionFailedException", 412);
export const RequestTooLarge = make("RequestTooLargeException", 413);
export const RequestEntityTooLarge = make("RequestEntityTooLargeException", 413);
export const CodeStorageExceeded = make("CodeStorageExceededException", 400);
export const TooManyRequests = make("TooManyRequestsException", 429);
export const UnsupportedMediaType = make("UnsupportedMediaTypeException", 415);
export const ServiceError = make("ServiceException", 500);
export const UnknownOperation = make("UnknownOperationException", 404);
export const ValidationError = make("ValidationException", 400);

/**
 * The "1 validation error detected: …" message AWS's request validation
 * produces for model constraints (ranges, patterns, lengths, enums).
 */
export function constraintViolation(member: string, value: unknown, constraint: string): LambdaError {
  const shown = typeof value === "string" ? value : JSON.stringify(value);
  return ValidationError(
    `1 validation error detected: Value '${shown}' at '${member}' failed to satisfy constraint: ${constraint}`,
  );
}

/** An integer member within [min, max], or the ValidationException AWS answers. */
export function integerIn(member: string, value: unknown, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw constraintViolation(member, value, "Member must be an integer");
  }
  if (value < min)
    throw constraintViolation(member, value, `Member must have value greater than or equal to ${min}`);
  if (value > max)
    throw constraintViolation(member, value, `Member must have value less than or equal to ${max}`);
  return value;
}
