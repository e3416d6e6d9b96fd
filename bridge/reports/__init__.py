"""Supervisors' reports: the callback completion log (``/desk/reports/callbacks``, its exports and
``GET /api/v1/reports/callbacks``), mounted by :class:`bridge.reports.capability.ReportsCapability`.

:mod:`bridge.reports.callback_log` holds the filters and the SQL (every figure aggregated in the
database), :mod:`bridge.reports.exports` the streamed CSV and XLSX files, :mod:`bridge.reports.pages`
the desk's pages and :mod:`bridge.reports.api` the API.
"""
