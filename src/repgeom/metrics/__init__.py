"""Geometry metrics: functions on arrays, with streaming accumulators for large data."""
