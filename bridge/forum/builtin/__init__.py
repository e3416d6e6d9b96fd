"""The builtin forum board: the daemon serves the units' boards itself (the embedded default).

- :mod:`.board`     storage and rules (synchronous, in the caller's session): posts, replies, events
- :mod:`.forum`     :class:`BuiltinForum`, the in-process :class:`bridge.forum.adapter.Forum`
- :mod:`.api`       the JSON API ``/api/v1/board/...`` for spokespeople (bearer tokens)
- :mod:`.pages`     the public read-only board (``/board``) and the spokesperson pages (``/desk/board``)
"""
