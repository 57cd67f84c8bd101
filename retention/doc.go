// Package retention deletes a tenant's data when its retention period has
// passed, and never while a legal hold covers it (45 CFR §164.310(d)(2)(i)
// disposal, §164.316(b)(2)(i) retention).
//
// # Policies
//
// Each tenant has a retention period (DefaultPeriod, 2,555 days, until it
// sets one) and may override it per channel. Which rule decides a row is
// fixed, strongest first:
//
//  1. an active legal hold on the tenant, the row's channel, its user or
//     the row itself: the row is kept, whatever else says;
//  2. the tenant's locked minimum: no period is shorter, and the minimum
//     can only be raised ([Policies.LockMinimum]);
//  3. the most specific period: the channel's override, else the tenant's
//     period, else the default.
//
// [Policies.Explain] tells which rule applies to a row. Every change is a
// new numbered [PolicyVersion]; nothing is edited. A change that shortens
// the period in force (including a tenant's first period, if shorter than
// the default) takes effect only after a grace period (DefaultGrace, 24
// hours), and any later change to the same scope made within the grace
// period cancels it, so a mistake can be undone before data is gone.
// Lengthening takes effect at once, even for a sweep already running:
// each batch checks, as part of the batch, that the tenant's policies have
// not changed since the sweeper read them (on Postgres a change waits for
// the batches in flight), and a batch that finds a change deletes nothing
// and is retried on the new policy.
//
// # Sweeps
//
// The application declares each [Target] (a table, its id, tenant, time and
// scope columns, and optionally a Deleter for what lives outside the
// table). A [Sweeper] deletes due rows scope by scope in batches, in
// keyset order (time, then id), with statement and lock timeouts, and
// paced so that live traffic is not starved: each batch is sized from the
// rate the last one achieved to take about SweeperConfig.BatchTime, and
// followed by a pause that keeps the share of time spent in batches at
// SweeperConfig.Duty (half, by default) and the rate under
// SweeperConfig.MaxRate if one is set. On a busier server batches get
// slower, so smaller, and the pauses stay proportional: the sweep gives
// way rather than take more than its share. Each batch:
//
//   - checks the holds in the same step as the delete (on Postgres, inside
//     the DELETE statement), so a hold placed at any moment is honoured by
//     every batch that has not yet committed when PlaceHold returns;
//   - calls the Target's Deleter, then the [BatchHook] with a [Record]
//     (tenant, target, scope, counts, id and time range, policy version),
//     inside the batch: on Postgres in the same transaction, so the audit
//     entry or integrity digest the hook writes commits with the deletion,
//     and an error rolls the whole batch back;
//   - moves the scope's checkpoint in the same commit, so a sweep killed at
//     any point resumes where it stopped, with nothing lost and nothing
//     deleted or recorded twice.
//
// Only one instance sweeps a tenant's rows of a target at a time: a lease
// in the store, taken and renewed by each batch (on Postgres under a
// transaction-scoped advisory lock), keeps other instances off until the
// holder finishes or its lease (SweeperConfig.LeaseTTL) expires. A run
// that finds a tenant's lease taken skips the whole target, so instances
// with the same tenants do not sweep one table side by side; instances
// given different tenants (SweeperConfig.Tenants) may.
//
// [Sweeper.DryRun] and [Sweeper.Forecast] count what would be deleted now,
// or within some days, on the same plan the sweep uses, deleting nothing.
// [Sweeper.Run] is a one-shot run for cron or a Kubernetes CronJob;
// [Sweeper.RunDaily] is a daily loop with jitter for long-running services.
//
// # What it does not do
//
// It does not remove rows from backups, replicas or logs, which keep their
// own retention, nor decide the periods: that stays the organisation's job.
// A hook that writes somewhere other than the batch's transaction (an
// object store) cannot be rolled back with it; such a Deleter must be
// idempotent, since a batch that fails after it ran is retried.
//
// [MemoryStore] keeps everything in memory, for tests and examples; the
// retentionpg package is the Postgres store, and retentiontest the suite
// both pass.
package retention
