"""The web app and the shared web layer every capability's pages and APIs import.

``app`` builds the FastAPI app; ``auth`` (API tokens), ``sessions`` (page sign-in), ``csrf``,
``throttle`` (sign-in throttling), ``errors`` (the 422 field-error route), ``templates`` (the
Jinja2 factory with gettext), ``paging`` (bounds of numbers) and ``site`` (``/``, the start
page, error pages) are shared: a capability imports these, never another capability's HTTP module.
"""
