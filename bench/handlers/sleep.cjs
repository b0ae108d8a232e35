// Sleeps (200 ms unless the event says otherwise): one environment stays busy per in-flight invoke.
// With `i` in the event it logs its start as the probe does (the async scenario waits for them).
exports.handler = async (event) => {
  if (event && typeof event.i === "number") console.log(`BENCH ${JSON.stringify({ i: event.i })}`);
  const ms = event && typeof event.ms === "number" ? event.ms : 200;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { slept: ms };
};
