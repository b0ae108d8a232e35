/**
 * The floor: a bare node:http server answering the Invoke path by calling the same handler
 * in-process. The least any HTTP invoke can cost. Prints `ready at <url>`.
 */
import { createServer } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const handlers = {
  hello: require("./handlers/hello.cjs").handler,
  sleep: require("./handlers/sleep.cjs").handler,
  echo: require("./handlers/echo.cjs").handler,
};
const route = /^\/2015-03-31\/functions\/([^/]+)\/invocations/;

const server = createServer((req, res) => {
  const m = req.url.match(route);
  const handler = m && handlers[decodeURIComponent(m[1]).replace(/[-\d]+$/, "")];
  if (req.method !== "POST" || !handler) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    const raw = Buffer.concat(chunks);
    const event = raw.length ? JSON.parse(raw.toString("utf8")) : {};
    const result = await handler(event, { awsRequestId: "floor" });
    const body = JSON.stringify(result);
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60000;
server.listen(0, "127.0.0.1", () => {
  console.log(`floor ready at http://127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
