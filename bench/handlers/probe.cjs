// For async invokes: logs when it started, beside the enqueue time the bench put in the event.
// The bench reads these lines back through Lambent's logs endpoint (works in any sandbox network).
exports.handler = async (event) => {
  const started = performance.timeOrigin + performance.now();
  console.log(`BENCH ${JSON.stringify({ i: event.i, enqueued: event.t0, started })}`);
  return { ok: true };
};
