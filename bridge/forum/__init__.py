"""The forum bridge: adapter, backends, outbox and deadlines (the calendar is site-wide: bridge.site)."""
