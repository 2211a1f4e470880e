"""Text utilities shared across Shoal: near-duplicate detection (dedup)."""
