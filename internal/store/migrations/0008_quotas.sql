-- Per-key quotas (issue 12): the API counts what one key created in the
-- last 24 hours and how many of its submissions are still open, on every
-- creating request, so those counts must be index range scans.
CREATE INDEX competitions_by_creator ON competitions (created_by, created_at);
CREATE INDEX submissions_by_submitter ON submissions (submitter, committed_at);
CREATE INDEX submissions_by_submitter_state ON submissions (submitter, state);
