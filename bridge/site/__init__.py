"""What is true site-wide: the China working calendar, the office hours and the site's clock.

The forum's deadlines, the dialplan include, the case-status phone line and the daemon's
health all read these; none of them owns them.  Nothing here imports the rest of bridge.
"""
