"""Tests of oversight: facts, explanations, the synthetic-traffic harness (issue 13)."""
