// For async invokes: reports when it started, with the enqueue time the bench put in the event,
// to the bench's collector over loopback HTTP, and returns once the collector has it.
const http = require("node:http");

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

exports.handler = async (event) => {
  const started = performance.timeOrigin + performance.now();
  const body = JSON.stringify({ i: event.i, enqueued: event.t0, started });
  await new Promise((resolve, reject) => {
    const req = http.request(
      event.collector,
      {
        method: "POST",
        agent,
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (res) => {
        res.resume();
        res.on("end", resolve);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  return { ok: true };
};
