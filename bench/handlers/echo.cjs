// Echoes the event back: the payload round trip.
exports.handler = async (event) => event;
