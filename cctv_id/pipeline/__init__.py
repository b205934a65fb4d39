"""Stage runner wiring video -> detect -> track -> embed -> match -> decide -> store."""
