"""IAB tier-1 content categories: users' interests, sites' content and ads' categories.

Everything in the world is keyed by the tier-1 category (``IAB17``); a sub-category such as
``IAB9-30`` counts as its tier-1 parent (``IAB9``). IAB24-26 (uncategorised, non-standard,
illegal) are not interests.
"""

from __future__ import annotations

from collections.abc import Iterable

#: (id, name, default interest popularity): how common the interest is among users.
CATEGORIES: tuple[tuple[str, str, float], ...] = (
    ("IAB1", "Arts & Entertainment", 1.6),
    ("IAB2", "Automotive", 0.9),
    ("IAB3", "Business", 0.8),
    ("IAB4", "Careers", 0.4),
    ("IAB5", "Education", 0.5),
    ("IAB6", "Family & Parenting", 0.7),
    ("IAB7", "Health & Fitness", 1.0),
    ("IAB8", "Food & Drink", 1.2),
    ("IAB9", "Hobbies & Interests", 1.1),
    ("IAB10", "Home & Garden", 0.8),
    ("IAB11", "Law, Gov't & Politics", 0.6),
    ("IAB12", "News", 1.4),
    ("IAB13", "Personal Finance", 0.8),
    ("IAB14", "Society", 0.5),
    ("IAB15", "Science", 0.5),
    ("IAB16", "Pets", 0.6),
    ("IAB17", "Sports", 1.3),
    ("IAB18", "Style & Fashion", 1.0),
    ("IAB19", "Technology & Computing", 1.2),
    ("IAB20", "Travel", 1.1),
    ("IAB21", "Real Estate", 0.5),
    ("IAB22", "Shopping", 1.2),
    ("IAB23", "Religion & Spirituality", 0.2),
)
IDS: tuple[str, ...] = tuple(c[0] for c in CATEGORIES)
NAMES: dict[str, str] = {c[0]: c[1] for c in CATEGORIES}
POPULARITY: dict[str, float] = {c[0]: c[2] for c in CATEGORIES}
INDEX: dict[str, int] = {c: i for i, c in enumerate(IDS)}
#: No category (an ad or site whose category is unknown).
NONE = -1


def tier1(cat: str) -> str:
    """``"IAB9-30"`` -> ``"IAB9"``."""
    return cat.split("-", 1)[0].strip().upper()


def index_of(cat: str | None) -> int:
    """The category index of ``cat`` (a tier-1 or sub-category id), or :data:`NONE`."""
    if not cat:
        return NONE
    return INDEX.get(tier1(cat), NONE)


def first_index(cats: Iterable[str]) -> int:
    """The index of the first known category among ``cats``, or :data:`NONE`."""
    for cat in cats:
        i = index_of(cat)
        if i != NONE:
            return i
    return NONE


def check(cat: str, where: str) -> None:
    """Raise ValueError naming ``where`` unless ``cat`` is a known IAB category."""
    if index_of(cat) == NONE:
        raise ValueError(f"{where}: {cat!r} is not an IAB tier-1 category ({IDS[0]}..{IDS[-1]})")
