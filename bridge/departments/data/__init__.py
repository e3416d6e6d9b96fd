"""The shipped units file (a package only so that wheels include it)."""
