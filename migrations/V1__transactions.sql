-- Every transaction with its detector verdict.
--
-- Columns id .. meta_data are the old service's and part of the compatibility
-- contract. The verdict is kept in typed columns so a flag can be explained
-- (what the window held, where the threshold was) and rebuilt exactly;
-- meta_data is left for client-supplied extras.
create table transactions (
    id            uuid primary key,
    user_id       uuid not null,
    amount        numeric(20, 2) not null,
    currency      varchar(3) not null,
    txn_date      timestamptz not null,
    status        varchar(32) not null,
    meta_data     jsonb,
    is_anomaly    boolean not null,
    -- graded score in [0, 1]; null when there was not enough history to judge
    anomaly_score double precision,
    -- how many earlier amounts the verdict was based on
    window_len    integer not null,
    -- what the detector took as typical: the window mean for the default rule
    baseline      double precision,
    threshold     double precision,
    created_at    timestamptz not null default now()
);

-- Serves the history query (one user, a date range, an amount range, keyset
-- order), the distinct-user listing (a skip scan over its leading column) and
-- rebuilding a user's window from the latest rows.
create index ix_user_date_amount_id on transactions (user_id, txn_date, amount, id);
