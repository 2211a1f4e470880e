"""Research: what the engines search and read (relevance, topic scope, coverage)."""
