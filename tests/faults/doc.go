// Package faults holds the fault runs of issue 7. Each ends with the same invariant
// check (checkInvariant, on the stopped server's data directory): every acknowledged
// record stored once and matched as the generator's truth says; every eligible person --
// derived independently from the acknowledged records, vaccine.Assess over their
// verified doses across facilities -- holding exactly one issued certificate that
// verifies with the data directory's trust list and counts all their doses; no
// certificate for anyone else; nothing left to sign, the central queue drained, no dead
// letters. TestInvariantCheckerCatches plants each kind of breakage to show the check
// fails when it should.
//
//   - TestSIGKILLDuringBulkRun: a generated population uploaded in batches of 1,000 over
//     three facilities to the real `vaxpass serve`, SIGKILLed five times at random
//     points (two uploads in flight, the matcher at work, a facility signing run in
//     flight, central signing draining), with the safety half of the invariant checked
//     after each kill and a restart on the same data directory.
//   - TestReadOnlyDataDir, TestReadOnlyDataDirUnprivileged: serve, registry load and
//     facility add on a data directory remounted read-only (a tmpfs of its own), or
//     made read-only by permissions (run as "nobody" when the test is root).
//   - TestDiskFull, TestDiskFullFirstStart: a tmpfs filled up under a running server,
//     under the CLI, and under a fresh data directory's first command.
//   - TestKMSThrottling, TestKMSThrottlingPipeline: KMS keys behind a layer that answers
//     every fourth request ThrottlingException, on a fake KMS endpoint and, when
//     VAXPASS_AWS_TESTS=1 and AWS_ENDPOINT_URL are set, on the emulator.
//
// Environment: VAXPASS_FAULT_PEOPLE sets the size (registry people; records are twice
// that; default 3,000, CI's reduced size); VAXPASS_FAULT_SEED replays the random kill
// points of a logged run; VAXPASS_FAULT_REAL_TIME=1 makes the SIGKILL run wait out the
// 30 s visibility timeout and let the real server drain, instead of draining in process
// on a clock moved past it; VAXPASS_BIN tests a prebuilt binary (shared/testkit/cli
// builds one otherwise); VAXPASS_TMPDIR places the bulk run's data directory (default
// /dev/shm when it has 1 GiB free: shared/testkit/server.ScratchDir).
//
// The storage faults need mount(2) (root with CAP_SYS_ADMIN) for a tmpfs of their own;
// without it they skip and say so. There is no production code in this package.
package faults
