// Package mfatest is the conformance suite for mfa.Store and
// mfa.PolicyStore implementations. A store passes when [Run] and
// [RunPolicyStore] pass against it; the memory store and the Postgres
// adapter both run them, so they cannot drift, and a third-party adapter
// gets the same checks.
//
// Each clause of the contract is a named subtest, so a failure names the
// clause it broke. [RunInstances] adds the replay race across several app
// instances, each with a Store of its own over one shared storage.
package mfatest
