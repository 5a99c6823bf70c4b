-- Marks the transactions the live simulation made.
--
-- Simulated transactions are stored like any other (the old service did),
-- but they are demo data: they are judged against a window of their own and
-- never enter the window a user's real transactions are judged against, and
-- clients can tell them apart (`meta_data.simulated`). Rows stored before
-- this migration were real or seeded history, so the default is false.
-- A constant default only changes the catalog: no table rewrite.
alter table transactions add column simulated boolean not null default false;
