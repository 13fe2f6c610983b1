// Package npmtest holds a test that calls the router and a baseline model
// server with the official openai npm package (client.mjs, pinned by
// package.json and package-lock.json), so both are checked against a real
// OpenAI client and not only against our own: every endpoint of the
// README's "OpenAI compatibility" table. The test skips when Node.js is missing;
// npm installs the package into the user's cache directory, never here.
//
// The package has no code of its own and nothing imports it.
package npmtest
