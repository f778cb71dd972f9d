"""Governance: purposes, consent, retention, police-search rules, transparency reports, the Art. 30 record."""
