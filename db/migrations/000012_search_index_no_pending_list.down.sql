ALTER INDEX chat.message_search_idx RESET (fastupdate);
