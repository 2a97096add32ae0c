"""A project's pronunciation lexicon in the database, and the spoken form each task carries.

The lexicon is applied in the API, where the project's data is: a segment's ``spoken_text`` is
computed with the lexicon when the document is added and again for the segments an entry touches
when the lexicon changes, so what the UI shows is what the voice is given. A user's own spoken
form (an override) gets the lexicon when its task is made.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from api.models import LexiconEntry, Segment, utcnow
from contract import limits
from text_processing.frontend import spoken_form
from text_processing.lexicon import Entry, Lexicon

# What a segment with nothing to say is synthesized as: a pause of about a sentence's gap.
SILENT_TASK_TEXT = f'<break time="{limits.SILENT_SENTENCE_MS}ms"/>'
_REFRESH_BATCH = 500


class LexiconLimitError(Exception):
    """The project's lexicon is full."""


def project_lexicon(session: Session, *, project_id: int) -> Lexicon:
    """The project's pronunciation lexicon."""
    return Lexicon(_entry(r) for r in list_entries(session, project_id=project_id))


def _entry(row: LexiconEntry) -> Entry:
    return Entry(row.grapheme, alias=row.alias, phoneme=row.phoneme)


def task_text(text: str, spoken: str | None, override: bool, lexicon: Lexicon) -> str:
    """What the voice is given for a segment: its stored spoken form, a user's own spoken form
    with the lexicon applied, or a pause when there is nothing to say. Rows from before the
    spoken form existed get it computed here."""
    if override and spoken:
        spoken = spoken_form(spoken, lexicon)
    elif spoken is None:
        spoken = spoken_form(text, lexicon)
    return spoken or SILENT_TASK_TEXT


def list_entries(session: Session, *, project_id: int) -> Sequence[LexiconEntry]:
    """The project's entries, oldest first."""
    return session.scalars(
        select(LexiconEntry).where(LexiconEntry.project_id == project_id).order_by(LexiconEntry.id)
    ).all()


def put_entries(
    session: Session, *, project_id: int, entries: Sequence[Entry], max_entries: int
) -> list[LexiconEntry]:
    """Add entries (an entry for a grapheme already there replaces it) and refresh the spoken
    form of the segments they touch.

    Raises:
        LexiconLimitError: The lexicon would hold more than ``max_entries``.
    """
    existing = {r.grapheme: r for r in list_entries(session, project_id=project_id)}
    new = {e.grapheme for e in entries} - set(existing)
    if len(existing) + len(new) > max_entries:
        raise LexiconLimitError(
            f"the lexicon would hold {len(existing) + len(new)} entries, over the limit of "
            f"{max_entries}; delete some first"
        )
    rows = []
    for entry in entries:
        row = existing.get(entry.grapheme)
        if row is None:
            row = LexiconEntry(project_id=project_id, grapheme=entry.grapheme, created_at=utcnow())
            session.add(row)
            existing[entry.grapheme] = row
        row.alias, row.phoneme = entry.alias, entry.phoneme
        rows.append(row)
    session.flush()
    refresh_spoken(session, project_id=project_id, graphemes=[e.grapheme for e in entries])
    return rows


def delete_entry(session: Session, *, entry: LexiconEntry) -> None:
    """Remove an entry and refresh the spoken form of the segments it touched."""
    project_id, grapheme = entry.project_id, entry.grapheme
    session.delete(entry)
    session.flush()
    refresh_spoken(session, project_id=project_id, graphemes=[grapheme])


def count_entries(session: Session, *, project_id: int) -> int:
    """How many entries the project's lexicon has."""
    return (
        session.scalar(
            select(func.count(LexiconEntry.id)).where(LexiconEntry.project_id == project_id)
        )
        or 0
    )


def refresh_spoken(session: Session, *, project_id: int, graphemes: Sequence[str]) -> int:
    """Compute the spoken form again (with the current lexicon) for the project's segments whose
    text holds one of ``graphemes`` as a word; overrides are left alone. Returns how many
    changed."""
    if not graphemes:
        return 0
    lexicon = project_lexicon(session, project_id=project_id)
    words = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(g) for g in graphemes) + r")(?!\w)")
    query = select(Segment).where(
        Segment.project_id == project_id,
        Segment.spoken_override.is_(False),
        # A coarse filter in the database; the word match below decides.
        or_(*(Segment.text.contains(g, autoescape=True) for g in graphemes)),
    )
    changed = 0
    for segment in session.scalars(query.execution_options(yield_per=_REFRESH_BATCH)):
        if not words.search(segment.text):
            continue
        spoken = spoken_form(segment.text, lexicon)
        if spoken != segment.spoken_text:
            segment.spoken_text = spoken
            changed += 1
    return changed
