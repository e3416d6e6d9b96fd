"""Page language: gettext catalogues (Babel ``.po`` files in ``bridge/locale``) compiled at start.

The message ids are the English texts, so ``en`` needs no translation and its
catalogue is empty; ``zh_CN`` translates every id.  The ``.po`` files are the
only source: they are compiled in memory (``babel.messages.pofile.read_po`` ->
``mofile.write_mo`` -> :class:`gettext.GNUTranslations`) when the desk starts,
so there is no compiled ``.mo`` to fall out of date.  Refresh the catalogue after
changing a page with::

    .venv/bin/pybabel extract -F bridge/desk/babel.cfg -o /tmp/desk.pot .
    .venv/bin/pybabel update -i /tmp/desk.pot -d bridge/locale -D messages

The case form's field messages come from :mod:`bridge.cases.messages` (one
catalogue for the API and the form).
"""
from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request

from bridge.cases.messages import pick_locale

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LOCALES = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


@lru_cache(maxsize=None)
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (an empty one for English)."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def request_locale(request: Request) -> str:
    """``?lang=`` (remembered in the session), else the session's, else Accept-Language, else the site's."""
    asked = request.query_params.get("lang")
    if asked in LOCALES:
        request.session["lang"] = asked
        return asked
    remembered = request.session.get("lang") if "session" in request.scope else None
    if remembered in LOCALES:
        return remembered
    default = request.app.state.config.site.locale
    return pick_locale(request.headers.get("accept-language"), default)
