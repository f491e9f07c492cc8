"""Stakeholder governance: the board, signed votes, quorum, and decisions applied on time."""
