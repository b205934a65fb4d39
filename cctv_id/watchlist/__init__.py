"""Watchlist: persons enrolled from photos, loaded from the database into a matcher."""
