"""The operator desk: sign-in, the live call pop, the case form and list (issue "Operator desk").

``mount_desk(app, config)`` adds it to the app made by ``bridge.web.app.create_app``
(see :mod:`bridge.desk.mount` for its modules).
"""
from bridge.desk.mount import mount_desk

__all__ = ["mount_desk"]
