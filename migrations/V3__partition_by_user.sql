-- Hash-partitions `transactions` by `user_id`, converting the table in
-- place with its rows.
--
-- Why: one user's history (the history query, a window rebuild) then lives
-- in one partition of a sixteenth of the table, whose indexes and vacuum
-- stay small as the table grows; and the table takes the shape Citus needs
-- to distribute it by `user_id` (`create_distributed_table('transactions',
-- 'user_id')`): every unique constraint includes the distribution column.
--
-- What changes for the schema contract: nothing in the columns or their
-- types. The primary key becomes (id, user_id): an id is unique per user
-- (see docs/scaling.md for what posting an id again under another user
-- does). Leading with `id` keeps a lookup by id alone served by an index
-- in each partition.
--
-- 16 partitions: the modulus of hash partitions cannot change without
-- rewriting the table, so it is chosen for growth (10M rows are ~625k per
-- partition) while a query that cannot be pruned (the users listing)
-- visits few enough of them.
--
-- The conversion runs in the migration's transaction under the migration
-- lock: it copies every row once (the old table is read, the new one
-- written, then the old one dropped), holding an exclusive lock on the
-- table meanwhile. Indexes are built after the copy, which is faster than
-- maintaining them row by row.

alter table transactions rename to transactions_unpartitioned;
alter index ix_user_date_amount_id rename to ix_user_date_amount_id_unpartitioned;
alter table transactions_unpartitioned
    rename constraint transactions_pkey to transactions_unpartitioned_pkey;

-- `like` copies the columns in order, with their types, not-null markers
-- and defaults; constraints and indexes come below.
create table transactions (like transactions_unpartitioned including defaults)
    partition by hash (user_id);

do $$
begin
    for remainder in 0..15 loop
        execute format(
            'create table transactions_p%s partition of transactions '
            'for values with (modulus 16, remainder %s)',
            lpad(remainder::text, 2, '0'), remainder);
    end loop;
end
$$;

insert into transactions select * from transactions_unpartitioned;
drop table transactions_unpartitioned;

-- On the partitioned table, so each partition gets its own (and future
-- partitions too).
alter table transactions add constraint transactions_pkey primary key (id, user_id);
create index ix_user_date_amount_id on transactions (user_id, txn_date, amount, id);

analyze transactions;
