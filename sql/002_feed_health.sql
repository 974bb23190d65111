-- Feed health and adaptive polling (RELIABILITY.md C1): weighted failures, a poll interval
-- that follows how often the feed changes, and the new address of a feed that moved.

ALTER TABLE feeds ADD COLUMN failure_score real NOT NULL DEFAULT 0;
ALTER TABLE feeds ADD COLUMN poll_interval_seconds double precision;
ALTER TABLE feeds ADD COLUMN items_last_poll integer;
ALTER TABLE feeds ADD COLUMN moved_to text;

COMMENT ON COLUMN feeds.failure_score IS 'Consecutive failures weighted by kind: hard failures (not a feed, 404/410, blocked) count 1, transient ones (timeouts, 5xx) 0.25. The feed is disabled when it reaches NEWSFLOW_FEED_DISABLE_AFTER.';
COMMENT ON COLUMN feeds.poll_interval_seconds IS 'Current polling interval: halved when a poll finds new items, lengthened by half when it finds none, within NEWSFLOW_POLL_MIN_SECONDS..NEWSFLOW_POLL_MAX_SECONDS; backs off on failure.';
COMMENT ON COLUMN feeds.items_last_poll IS 'New items the last successful poll found.';
COMMENT ON COLUMN feeds.moved_to IS 'Where the feed now lives after a permanent redirect (301/308); later polls fetch it there.';
CREATE INDEX feeds_next_poll ON feeds (next_poll_at) WHERE enabled;
