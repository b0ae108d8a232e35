/** The data-plane error types: named as Lambda names them, rendered in one shape. */
import { describe, expect, it } from "vitest";
import { ERROR_FAMILIES, errorBody, failureStatus, RuntimeError, SandboxError } from "./errors.js";

describe("data-plane error types", () => {
  it("each constant is `<Family>.<Key>`, its family's prefix and its own key", () => {
    for (const [family, types] of Object.entries(ERROR_FAMILIES)) {
      for (const [key, value] of Object.entries(types)) expect(value).toBe(`${family}.${key}`);
    }
  });

  it("include the types Lambda reports for runtime, sandbox, extension and response failures", () => {
    const all = Object.values(ERROR_FAMILIES).flatMap((f) => Object.values(f) as string[]);
    for (const t of [
      "Runtime.ExitError",
      "Runtime.OutOfMemory",
      "Runtime.ImportModuleError",
      "Runtime.UserCodeSyntaxError",
      "Runtime.HandlerNotFound",
      "Runtime.InvalidEntrypoint",
      "Sandbox.Timedout",
      "Extension.Crash",
      "Extension.InitError",
      "Function.ResponseSizeTooLarge",
    ]) {
      expect(all).toContain(t);
    }
  });

  it("render one body shape, errorMessage first, with hostile text kept intact", () => {
    const body = errorBody(RuntimeError.ExitError, 'say "hi"\n\u0000</script>');
    expect(body.toString("utf8")).toBe(
      '{"errorMessage":"say \\"hi\\"\\n\\u0000</script>","errorType":"Runtime.ExitError"}',
    );
    expect(JSON.parse(body.toString("utf8"))).toEqual({
      errorMessage: 'say "hi"\n\u0000</script>',
      errorType: "Runtime.ExitError",
    });
  });

  it("name a timeout apart from every other failure", () => {
    expect(failureStatus(SandboxError.Timedout)).toBe("timeout");
    expect(failureStatus(RuntimeError.OutOfMemory)).toBe("error");
    expect(failureStatus("TypeError")).toBe("error");
    expect(failureStatus(undefined)).toBe("error");
  });
});
