"""The Database of Qualified Teachers (DQT, now TRS): owns everyone with a TRN, keyed by TRN."""
