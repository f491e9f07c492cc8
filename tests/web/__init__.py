"""Tests of the web edge: authentication first, one error envelope, input bounds."""
