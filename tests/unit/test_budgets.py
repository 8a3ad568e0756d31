"""The equal-budget page: labels parsed, tables per (dataset, mask, budget), the pick from the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from inpaintbench.core.errors import InputError
from inpaintbench.report.budgets import budget_of, budget_tables, budgets_markdown, picks


def _frame(spec: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """Records for ``{(label, mask): per-image LPIPS}`` on one dataset (PSNR derived, NFE from the label)."""
    rows = []
    for (label, mask), values in spec.items():
        parsed = budget_of(label)
        for i, v in enumerate(values):
            rows.append({"method": label, "dataset": "d", "mask": mask, "sample_id": str(i), "status": "ok",
                         "lpips": float(v), "psnr": 30.0 - 10 * float(v), "time_s": 0.01,
                         "nfe": float(parsed[1]) if parsed else np.nan})
    return pd.DataFrame(rows)


def test_budget_of_parses_only_suffixed_labels():
    assert budget_of("ddnm@100") == ("ddnm", 100)
    assert budget_of("ddnm-plus@25") == ("ddnm-plus", 25)
    assert budget_of("telea") is None
    assert budget_of("a@b") is None


def test_tables_group_by_budget_and_separate_a_clear_winner():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.3, 40)
    frame = _frame({("a@25", "box"): base, ("b@25", "box"): base + 0.05, ("a@100", "box"): base - 0.01,
                    ("b@100", "box"): base - 0.01 + rng.normal(0, 1e-4, 40), ("telea", "box"): base})
    tables = {t.budget: t for t in budget_tables(frame)}
    assert sorted(tables) == [25, 100]
    assert tables[25].best == "a@25" and tables[25].tied == ["a@25"]
    assert set(tables[100].tied) == {"a@100", "b@100"}  # equal but for noise: tied
    assert "telea" not in set(tables[25].rows["method"])  # no budget suffix: not on this page
    assert tables[25].rows.loc[0, "nfe"] == 25


def test_pick_counts_masks_won_or_tied():
    rng = np.random.default_rng(1)
    x = rng.uniform(0.2, 0.3, 40)
    frame = _frame({("a@25", "box"): x, ("b@25", "box"): x + 0.05,
                    ("a@25", "wide"): x + 0.05, ("b@25", "wide"): x,
                    ("a@25", "half"): x, ("b@25", "half"): x + 0.05})
    (pick,) = picks(budget_tables(frame))
    assert (pick.method, pick.wins, pick.n_masks) == ("a@25", 2, 3)
    assert pick.per_mask["wide"] == ["b@25"]


def test_page_refuses_results_without_budgets():
    frame = _frame({("telea", "box"): np.full(4, 0.1), ("zero-fill", "box"): np.full(4, 0.2)})
    with pytest.raises(InputError, match="@NFE"):
        budgets_markdown(frame, "t", "c")
