"""Ride codes as an issuer and a rider app make them: keys, certificates, key sets, codes."""
