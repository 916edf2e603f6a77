-- The search index takes each message's words as the message is stored, instead of gathering
-- them in GIN's pending list: with the list, whichever insert finds it over
-- gin_pending_list_limit (4 MB) merges all of it into the index inside its own statement, and
-- every send waiting for that group commit waits with it (a stall of tens of milliseconds every
-- few seconds under a steady send rate). Postgres' documentation gives this setting for
-- consistent response time over update speed. The entries already pending are merged now.
ALTER INDEX chat.message_search_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('chat.message_search_idx'::regclass);
