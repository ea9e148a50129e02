"""The station server: signed artefacts out to readers; authenticated journal records and
status in, kept in a durable store (SQLite or PostgreSQL); the fleet page."""
