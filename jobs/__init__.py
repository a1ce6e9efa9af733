"""Thin spark-submit entry points: each parses config, builds the session and calls the library."""
