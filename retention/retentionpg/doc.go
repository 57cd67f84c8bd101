// Package retentionpg is the Postgres store of package retention, on pgx
// v5.
//
// Its tables (retention_policies, retention_holds, retention_checkpoints,
// retention_leases) live in Config.Schema or, when that is empty, wherever
// the connection's search_path puts them. [Migrate] creates them from the
// embedded migrations/*.sql files, which are plain SQL for teams that run
// their own migration tool.
//
// A sweep batch is one transaction of three round trips plus the hook's
// (see [Store.SweepBatch]): a transaction-scoped advisory lock and a lease
// row make one instance the sweeper of a tenant's rows of the target; one
// statement reads the checkpoint, picks the rows in keyset order with FOR
// UPDATE SKIP LOCKED, so a row another transaction holds is left for the
// next run rather than waited for, deletes them with the legal-hold check
// inside the DELETE itself, and moves the checkpoint; and the
// retention.BatchHook runs inside the
// transaction, which [Tx] returns, so an audit entry or integrity digest
// written through it commits or rolls back with the deletion. Each batch
// sets statement_timeout and lock_timeout; a batch that hits one fails with
// retention.ErrTimeout and the sweeper retries it smaller.
//
// The application's table needs an index that starts with the tenant and
// time columns and ends with the id, such as
//
//	CREATE INDEX ON message (app_id, created_at, id);
//
// so that each batch reads only the rows it deletes.
package retentionpg
