-- When a pool's final evaluation tick ran (the first tick at or after its
-- end); settlement without force waits for it.
ALTER TABLE pools ADD COLUMN final_tick_at BIGINT;
