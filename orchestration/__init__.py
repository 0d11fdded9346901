"""Orchestration: the code location's entry point and the jobs that sensors and schedules launch."""
