// Package faults holds the fault runs of issue 7: a bulk run of generated people through
// the real `vaxpass serve` killed with SIGKILL at random points and restarted; a data
// directory that is read-only or whose disk fills up; KMS throttling under central
// signing. Every run ends with the same invariant check (checkInvariant): every accepted
// record stored and matched as the generator's truth says, every eligible person --
// derived independently from the records, vaccine.Assess over their verified doses --
// exactly one issued certificate that verifies with the data directory's trust list, no
// certificate for anyone else, nothing lost, nothing duplicated.
//
// Size: VAXPASS_FAULT_PEOPLE people in the registry (default 3,000; the records are twice
// that); VAXPASS_FAULT_SEED fixes the random kill points (default: a new seed, logged).
// The storage faults need mount(2) (root with CAP_SYS_ADMIN): a tmpfs of their own,
// remounted read-only or filled up; without it they skip and say so. The KMS test runs
// against a fake KMS, and also against the emulator when VAXPASS_AWS_TESTS=1 and
// AWS_ENDPOINT_URL are set.
//
// There is no production code in this package.
package faults
