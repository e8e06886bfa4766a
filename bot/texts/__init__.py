"""What the bot says: rendering, languages (Babel catalogs), command texts, freshness notes."""
