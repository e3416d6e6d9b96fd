"""The public figures: what ``/transparency`` and ``/transparency.json`` show, computed once per
period and minute (:class:`~bridge.transparency.cache.TtlCache` on ``app.state``).

Only units' figures leave here: no case, no caller, no operator (the figures module reads none of
them into its results)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import FastAPI

from bridge.i18n import N_
from bridge.web.periods import site_clock
from bridge.transparency.cache import TtlCache
from bridge.transparency.figures import unit_report
from bridge.site.periods import Period

CACHE_TTL_S = 60.0

# Each figure's definition, shown beside it (the page) and given with it (the JSON).
DEFINITIONS: dict[str, tuple[str, str]] = {
    "posts_received": (N_("Posts received"), N_(
        "Posts that reached the unit in the period: cases the hotline posted to its board, and posts "
        "forwarded to it by another unit (in brackets).")),
    "answer_rate": (N_("Answer rate"), N_(
        "Of the posts received in the period and not forwarded on, the share the unit has answered.")),
    "response_rate": (N_("Response rate (accepted in time)"), N_(
        "Of the posts received in the period whose acceptance is settled, the share the unit "
        "accepted (or forwarded to the right unit) within the limit: 2 office hours for a post made in "
        "office hours, else 24 hours. A post not yet due counts once it is accepted or overdue.")),
    "answered_in_time_rate": (N_("Answered within 3 days"), N_(
        "Of the answers owed from an acceptance or a follow-up in the period and settled, the share "
        "given by the deadline (3 days, as the site counts them).")),
    "median_acceptance_s": (N_("Median time to accept"), N_(
        "The middle value of the clock time from a post reaching the unit to its acceptance or forward.")),
    "median_answer_s": (N_("Median time to answer"), N_(
        "The middle value of the clock time from the acceptance (or the follow-up) to the answer.")),
    "forwards": (N_("Forwards made / received"), N_(
        "Posts the unit forwarded to another unit in the period / posts forwarded to it.")),
    "follow_ups": (N_("Follow-ups"), N_(
        "Follow-up questions asked in the unit's threads in the period, and how many the unit answered.")),
    "overdue_now": (N_("Overdue now"), N_(
        "Posts the unit holds now whose acceptance or answer is past its deadline.")),
    "satisfaction_rate": (N_("Satisfaction"), N_(
        "Of the callers who graded the unit's answers of the period when the hotline called "
        "them back, the share who said satisfied or very satisfied (the number graded in brackets).")),
    "deletions": (N_("Deletions"), N_(
        "Posts deleted: case numbers issued whose case is gone, and board threads whose case is gone, "
        "counted from the database. Nothing is ever deleted.")),
}


def figures_cache(app: FastAPI) -> TtlCache:
    cache = getattr(app.state, "transparency_cache", None)
    if cache is None:
        cache = app.state.transparency_cache = TtlCache(CACHE_TTL_S)
    return cache


def compute_public(db, zone, period: Period, now: datetime) -> dict[str, Any]:
    """The public figures of ``period`` (a worker-thread function)."""
    start, end = period.instants(zone)
    with db.session(readonly=True) as session:
        report = unit_report(session, start, end, now)
    deletions = report.deletions
    return {
        "period": {"name": period.name, "from": period.start.isoformat(), "to": period.end.isoformat(),
                   "zone": zone.key},
        "computed_at": now.astimezone(zone).isoformat(timespec="seconds"),
        "deletions": {"total": deletions.total, "numbers_issued": deletions.numbers_issued,
                      "cases_present": deletions.cases_present, "numbers_missing": deletions.numbers_missing,
                      "board_posts_without_case": deletions.board_posts_without_case},
        "units": [figures_out(figures) for figures in report.units],
    }


def figures_out(figures) -> dict[str, Any]:
    """A unit's figures as the JSON gives them (the satisfaction counts and rate together)."""
    values = figures.as_dict()
    satisfaction = {"graded": values.pop("graded"), "satisfied": values.pop("satisfied"),
                    "rate": values.pop("satisfaction_rate")}
    return {**values, "satisfaction": satisfaction}


async def public_figures(app: FastAPI, period: Period) -> dict[str, Any]:
    """The cached public figures of ``period`` (computed at most once per :data:`CACHE_TTL_S`)."""
    db, zone = app.state.db, app.state.config.site.zone

    async def compute() -> dict[str, Any]:
        return await db.run(compute_public, db, zone, period, site_clock(app).now())

    return await figures_cache(app).get((period.start, period.end), compute)
