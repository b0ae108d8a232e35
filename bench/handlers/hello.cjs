// Hello world: the handler every system runs for warm, throughput and cold-start numbers.
exports.handler = async () => ({ statusCode: 200, body: "hello" });
