"""Keys for people at the API edge: the admission gate every turn passes, and the admin API for keys and usage."""
