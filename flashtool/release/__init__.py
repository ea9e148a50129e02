"""What goes onto readers: signing keys, signed manifests and the release index, app
bundles, and the first install over USB."""
