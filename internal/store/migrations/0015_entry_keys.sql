-- Entry checks look up a competition's entries by digest and by key through
-- indexes on the concatenated (competition, digest) and (competition, key),
-- not on two columns: the two-column indexes shared their leading column
-- with three other indexes, and when PostgreSQL had no statistics for the
-- competition (a new table, or a competition newer than the last ANALYZE:
-- every new competition's first burst of entries) it took the competition
-- to hold one row and walked all its entries through one of those on each
-- batch, a cost that grew with every entry (bench/ingest: 2 to 4 ms a batch
-- at 2,000 entries). A lookup on the concatenation can use no other index
-- (store.entrantsQuery). Competition ids hold no space, so the
-- concatenation is unambiguous.
DROP INDEX submissions_by_competition_digest;
DROP INDEX submissions_by_competition_submitter;
CREATE INDEX submissions_by_entry_digest ON submissions ((competition_id || ' ' || digest));
CREATE INDEX submissions_by_entry_key ON submissions ((competition_id || ' ' || submitter), state);
