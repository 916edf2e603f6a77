-- Intentionally empty: go-chatty's migration 2 converted its ids to uuid, which 000001 already
-- does here. Keeping the number lets a go-chatty database at version 2 continue from 000003.
SELECT 1;
