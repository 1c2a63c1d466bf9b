// Package e2e holds the end-to-end acceptance tests of issue 4. They run the real vaxpass
// binary (shared/testkit/cli builds it once per test binary) -- `vaxpass serve` as a
// subprocess on a fresh data directory (shared/testkit/server) -- and talk to it only
// through the contract: the CLI and the HTTP API (plus the lookup page in headless
// Chromium, shared/testkit/browser). After a server has stopped, some tests open its data
// directory to count what it stored (certificates, queued messages): the server holds the
// database lock while it runs.
//
//   - TestPipeline: generated registry and records, every error class and malformed
//     records uploaded, match statuses against the generator's truth, signing, one
//     certificate per eligible person, lookup, QR and verification.
//   - TestLookupPage: the lookup page in Chromium against a real server (skipped when no
//     chromium binary exists, failing in CI). Screenshots go to $VAXPASS_ARTIFACTS/e2e
//     (default ./artifacts/e2e in the repository).
//   - TestCrashSafety: SIGKILL during matching (an upload in flight), during a signing run
//     and right after one, restart, nothing lost, nothing issued twice.
//   - TestSourceIDRoundTrip: every source_id an upload accepts can be read back with
//     GET /v1/doses/{source_id}; error answers carry no internal text.
//
// Data directories live on /dev/shm when it has room (server.ScratchDir; VAXPASS_TMPDIR
// overrides): the tests kill processes, they do not cut the power, so what the kernel
// holds survives as it would on disk, and skipping the disk's fsync latency keeps the
// package within its time budget. VAXPASS_BIN tests a binary built elsewhere instead of
// building one.
// There is no production code in this package.
package e2e
