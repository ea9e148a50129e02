"""Offline-verifiable QR ride codes (format in docs/ride-code.md).

Policy-free: the verifier says what is wrong with a code (a result constant); the decision core
turns that into a verdict and looks the account up in the blocklist like a card.
"""
