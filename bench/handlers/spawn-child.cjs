// The cold-start floor: a bare node process that loads the handler and says so on stdout.
require("./hello.cjs");
process.stdout.write("ready\n");
