"""User-facing errors: the CLI prints their message as one line and exits non-zero."""


class CampaignError(Exception):
    """Bad input or a bad file, reported to the user without a traceback."""
