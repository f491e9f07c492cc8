"""Synthetic persons, arrests, involvements and charges for the search benchmark."""
