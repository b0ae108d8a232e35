/** Option parsers shared by the CLI's commands. */
import { InvalidArgumentError } from "commander";

/** An integer option within [min, max]. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}
