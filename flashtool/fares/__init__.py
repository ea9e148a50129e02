"""Fare tables: the network and fare rules as a spec, built into the reader's signed binary
table (firmware/fares.py reads it), and priced here for the audit of what readers charged."""
