// Package retentiontest is the conformance suite every retention.Store must
// pass. A store's tests call Run with a function that gives the suite a
// fresh store and an empty table to sweep; Run fans out one subtest per
// clause of the contract, so the memory store, the Postgres store and any
// third-party store are held to the same behaviour.
//
// A Harness gives the suite a store and an empty table (a Target) with a
// way to insert rows and list what is left; Other, when set, opens a second
// handle on the same data so that two instances can sweep at once. The
// clauses set policies at a fixed instant, move a test Clock past their
// grace period and then sweep, so no test sleeps. A store that measures
// leases by its own clock rather than the sweeper's sets ExpireLeases, so
// the lease clauses can make a lease run out.
package retentiontest
