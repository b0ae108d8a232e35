// Output flood: writes `event.mb` MB (default 50) to stdout without a newline, as fast as the pipe
// takes it, then answers. The "flood" scenario runs it next to a quiet function.
exports.handler = async (event) => {
  const chunk = "x".repeat(64 * 1024);
  const chunks = (event?.mb ?? 50) * 16;
  for (let i = 0; i < chunks; i++) {
    if (!process.stdout.write(chunk)) await new Promise((r) => process.stdout.once("drain", r));
  }
  return { statusCode: 200, body: "flooded" };
};
