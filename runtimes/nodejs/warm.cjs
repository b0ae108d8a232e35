// Loaded once by stem.mjs to warm the CommonJS loader before a function arrives.
