"""Pages of long lists without counting them.

On a million contacts, ``COUNT(*)`` under a selective filter reads far more
rows than the first page does. ``SeekPage`` asks for one row more than a page
holds to learn whether a next page exists; lists show their total separately,
loaded after the page (see ``contact_count``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class SeekPage:
    """Quacks like Django's ``Page`` for templates, without a paginator's count."""

    paginator = None

    def __init__(self, queryset: Any, number: Any, per_page: int) -> None:
        try:
            self.number = max(1, int(number))
        except (TypeError, ValueError):
            self.number = 1
        start = (self.number - 1) * per_page
        rows = list(queryset[start : start + per_page + 1])
        self.object_list = rows[:per_page]
        self._has_next = len(rows) > per_page
        self.per_page = per_page

    def __iter__(self) -> Iterator[Any]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    def has_next(self) -> bool:
        return self._has_next

    def has_previous(self) -> bool:
        return self.number > 1

    def has_other_pages(self) -> bool:
        return self._has_next or self.number > 1

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1

    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.object_list else 0

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1
