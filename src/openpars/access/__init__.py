"""The one enforcement point: every read of records, for every caller, goes through here."""
