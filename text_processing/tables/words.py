"""Word lists the spoken-form rules consult: Roman-numeral cues, regnal names, initialisms,
acronyms read as words, year cues and month names. One list per kind of rule."""

from __future__ import annotations

MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July", "August"),
    *("September", "October", "November", "December"),
)

# A Roman numeral after one of these is a number: "Chapter IV" → "Chapter four".
ROMAN_CUES = frozenset(
    """Chapter Part Book Volume Vol Act Scene Section War Appendix Phase Type Class Level Stage
    Article Title Schedule Episode Round Division Grade Canto Psalm Annex Table Figure Plate
    Unit Lesson Bowl Olympiad Series Mark Mk Article Amendment Vatican Apollo""".split()
)
# A Roman numeral after one of these is a regnal ordinal: "Louis XIV" → "Louis the fourteenth".
REGNAL_NAMES = frozenset(
    """Alexander Alfonso Amadeus Anne Benedict Boniface Carl Catherine Charles Christian Clement
    Constantine Cyrus Darius David Edmund Edward Elizabeth Ferdinand Francis Frederick George
    Gregory Gustav Gustavus Harald Henry Honorius Innocent Isabella Ivan James Joanna John Joseph
    Juan Julius Leo Leopold Louis Ludwig Malcolm Manuel Margaret Maria Mary Maximilian Mehmed
    Michael Napoleon Nicholas Olaf Otto Paul Pedro Peter Philip Pius Ptolemy Ramesses Rameses
    Richard Robert Rudolf Sancho Sebastian Selim Sixtus Stephen Suleiman Urban Victor Vladimir
    Wilhelm William""".split()
)

# Read letter by letter (besides every capitalised word without a vowel, such as "BBC").
INITIALISMS = frozenset(
    """FBI CIA NSA USA UK EU UN US CEO CFO CTO COO IBM MRI DNA RNA ATM API URL PDF USB GPU CPU
    AI ID TV PC BBC CNN NBA NFL MIT UCLA IRS EPA FDA NYC DC HIV IRA IOU IQ EU UAE USSR ICU ER
    HR PR VIP FAQ ETA DIY RSVP BMW AOL HP IMF WHO OECD ISO IEEE UFO CD DVD GPS SUV ABC NBC
    BA MA PhD MD AD BC BCE CE""".split()
)
# Capitalised words read as words, never spelled (most are not spelled anyway; these have no
# vowel where it counts or are in the initialism pattern's way).
ACRONYMS = frozenset(
    """NASA NATO UNESCO UNICEF OPEC FIFA NAFTA LASER RADAR SCUBA AIDS GIF JPEG PIN SIM
    ASAP COVID SARS ISIS""".split()
)

# A four-digit number after one of these is a year: "in 1850", "since 2040".
YEAR_CUES = frozenset(
    """in since until till by from to during before after around circa ca year years of early
    late mid spring summer autumn fall winter between through""".split()
)
