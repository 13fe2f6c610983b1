-- Entry checks (issue 20): a new entry looks up the active entries with its
-- digest and counts its key's, instead of reading every submission of the
-- competition; the key's count reads the index alone (state is in it).
CREATE INDEX submissions_by_competition_digest ON submissions (competition_id, digest);
CREATE INDEX submissions_by_competition_submitter ON submissions (competition_id, submitter, state);
