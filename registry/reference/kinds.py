"""The kinds of reference import (API and `meterhub reference import KIND FILE`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from registry.reference import columns
from registry.reference.firm_imports import import_lists, import_projects
from registry.reference.imports import Importer, import_schemes, table_importer
from registry.reference.tables import BENCHMARKS, GRID_FACTORS, HOLIDAYS


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of reference import: its sheet headers and its import."""

    columns: Mapping[str, str]
    run: Importer

    @property
    def fields(self) -> set[str]:
        return set(self.columns.values())


KINDS: Mapping[str, Kind] = {
    "holidays": Kind(columns.HOLIDAY_COLUMNS, table_importer(HOLIDAYS)),
    "grid-factors": Kind(columns.GRID_FACTOR_COLUMNS, table_importer(GRID_FACTORS)),
    "benchmarks": Kind(columns.BENCHMARK_COLUMNS, table_importer(BENCHMARKS)),
    "schemes": Kind(columns.SCHEME_COLUMNS, import_schemes),
    "lists": Kind(columns.LIST_COLUMNS, import_lists),
    "projects": Kind(columns.PROJECT_COLUMNS, import_projects),
}
