"""ValidationConfig's batch sizes: what a cheap table model gets by default, and the caps."""

from __future__ import annotations

import pytest

from assay.core.config import BATCH_MEMORY_BYTES, TABLE_BATCH_ROWS, ValidationConfig


@pytest.mark.parametrize(
    ("features", "rows"),
    [(5, 65_536), (32, 65_536), (64, 32_768), (256, 8192), (5000, 8192)],
)
def test_table_batches_hold_about_8_mib_of_input_within_the_bounds(
    features: int, rows: int
) -> None:
    assert ValidationConfig().batch_size_for("tabular", 4 * features) == rows
    assert TABLE_BATCH_ROWS[0] <= rows <= TABLE_BATCH_ROWS[1]


def test_images_default_to_64_and_an_asked_size_is_kept_under_the_memory_cap() -> None:
    assert ValidationConfig().batch_size_for("image", 4 * 3 * 224 * 224) == 64
    assert ValidationConfig(batch_size=100).batch_size_for("tabular", 20) == 100
    huge = 4 * 3 * 8192 * 8192
    assert (
        ValidationConfig(batch_size=64).batch_size_for("image", huge) == BATCH_MEMORY_BYTES // huge
    )
    assert ValidationConfig().batch_size_for("image", BATCH_MEMORY_BYTES * 2) == 1
