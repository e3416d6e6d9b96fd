"""The units' figures (SQL) and the public transparency page: ``/transparency``, ``/transparency.json``
and, for supervisors, ``GET /api/v1/reports/units``."""
