"""The station server: published artefacts out, journal uploads and reader status in."""
