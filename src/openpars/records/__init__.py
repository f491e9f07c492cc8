"""Persons, arrests, involvements, charges and the arrest workflow."""
