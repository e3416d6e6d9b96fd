"""Languages: gettext catalogues (Babel ``.po`` files in ``bridge/locale``), and which one a request gets.

Every user-facing text of the desk pages and of the case rules (the API's and
the form's field messages) is a message id in the catalogues; the code only
names it.  The message ids are the English texts, so ``en`` needs no
translation (its ``msgstr`` are empty); ``zh_CN`` (the default) translates
every id.  Short words that mean different things in different places (the
case form's field labels, the names of private data) carry a context
(``msgctxt``), marked with :func:`NC_` and read with ``pgettext``.

The ``.po`` files are the only source: they are compiled in memory
(``babel.messages.pofile.read_po`` -> ``mofile.write_mo`` ->
:class:`gettext.GNUTranslations`) the first time a locale is used, so there is
no compiled ``.mo`` to fall out of date.  Refresh the catalogues after changing
a text with::

    .venv/bin/pybabel extract -F bridge/desk/babel.cfg --sort-output -w 120 -o /tmp/messages.pot .
    .venv/bin/pybabel update -N -w 120 -i /tmp/messages.pot -d bridge/locale -D messages

then translate the new ``zh_CN`` entries (``tests/i18n`` checks that none is missing).

Which locale a request gets:

- the JSON API (:func:`header_locale`): ``Accept-Language`` (``en`` when English
  comes before Chinese), else the site's ``[site] locale``;
- the desk pages (:func:`request_locale`): ``?lang=`` (remembered in the
  session), else the session's, else as the API.
"""
from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from starlette.requests import Request

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT_LOCALE = "zh_CN"
LOCALES = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def N_(text: str) -> str:
    """Marks a message id for extraction; it is translated where it is shown."""
    return text


def NC_(context: str, text: str) -> tuple[str, str]:
    """Marks a message id with its context for extraction: ``(context, text)`` for ``pgettext``."""
    return context, text


def catalogue_path(locale: str) -> Path:
    return LOCALE_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


@lru_cache(maxsize=None)
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale`` (an empty one when it has no ``.po`` file)."""
    path = catalogue_path(locale)
    if not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def pick_locale(accept_language: str | None, default: str = DEFAULT_LOCALE) -> str:
    """The locale for an ``Accept-Language`` header: ``en`` if English comes before Chinese, else ``default``."""
    if accept_language:
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("zh"):
                return "zh_CN"
            if tag.startswith("en"):
                return "en"
    return default if default in LOCALES else DEFAULT_LOCALE


def site_locale(request: Request) -> str:
    """The site's ``[site] locale`` (zh_CN when the app has no configuration)."""
    config = getattr(request.app.state, "config", None)
    return config.site.locale if config is not None else DEFAULT_LOCALE


def header_locale(request: Request) -> str:
    """zh_CN or en: the request's ``Accept-Language``, else the site's configured locale (the API's rule)."""
    return pick_locale(request.headers.get("accept-language"), site_locale(request))


def request_locale(request: Request) -> str:
    """``?lang=`` (remembered in the session), else the session's, else Accept-Language, else the site's."""
    has_session = "session" in request.scope
    asked = request.query_params.get("lang")
    if asked in LOCALES:
        if has_session:
            request.session["lang"] = asked
        return asked
    remembered = request.session.get("lang") if has_session else None
    if remembered in LOCALES:
        return remembered
    return header_locale(request)


__all__ = ["DEFAULT_LOCALE", "HTML_LANG", "LOCALES", "LOCALE_DIR", "NC_", "N_", "catalogue_path",
           "header_locale", "pick_locale", "request_locale", "site_locale", "translations"]
