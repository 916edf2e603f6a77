DROP TABLE IF EXISTS chat.bus_frame;
