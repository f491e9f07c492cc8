"""Tests of oversight: explanations, the traffic harness, canaries and review (issue 13)."""
