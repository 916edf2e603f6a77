-- A conversation's membership version: bumped in the same transaction as every change to who
-- is in it (members added or removed) or to the blocks between its members. Cached membership
-- facts carry the version they were read at, and a fact whose version is not the conversation's
-- current one is read again: a cache that missed an invalidation (Redis unreachable when the
-- change committed, or restored from its append-only file afterwards) cannot grant access that
-- was taken away. The bump also NOTIFYs chatty_membership with the conversation id (from the
-- application, inside the transaction), which api processes listen to for the versions they keep.
ALTER TABLE chat.conversation ADD COLUMN member_version bigint NOT NULL DEFAULT 0;
