"""Public event warnings: CAP 1.2 alerts ingested into the live ``warnings`` layer (docs/warnings.md)."""
