// Sleeps (200 ms unless the event says otherwise): one environment stays busy per in-flight invoke.
exports.handler = async (event) => {
  const ms = event && typeof event.ms === "number" ? event.ms : 200;
  await new Promise((resolve) => setTimeout(resolve, ms));
  return { slept: ms };
};
