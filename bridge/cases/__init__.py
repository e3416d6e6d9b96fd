"""Cases: the case form's rules (validation, privacy guard), filing, reading and listing.

- :mod:`bridge.cases.validation` and :mod:`bridge.cases.privacy` are pure;
- :mod:`bridge.cases.messages` holds the messages (zh_CN, en) by message id;
- :mod:`bridge.cases.service` files a case (number, first timeline entry, forum outbox row,
  one transaction), reads it back and lists cases;
- :mod:`bridge.cases.api` is the JSON API under /api/v1/cases.
"""
