"""The auction and bidding engine for the waste lead-acid battery trade.

``auction`` holds the pure core (money, books, engine) and its shells (CLI, later the
runner and journal).  Nothing imported from here does I/O at import time.
"""

__version__ = "0.1.0"
