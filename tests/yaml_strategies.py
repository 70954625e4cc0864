"""Hypothesis strategies shared by the config fuzzers: YAML-like values built from scalars."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def yaml_values(words: Sequence[str], text_size: int) -> st.SearchStrategy[object]:
    """YAML scalars with `words` mixed in, and lists and mappings nesting them."""
    scalars: st.SearchStrategy[object] = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=True)
        | st.text(max_size=text_size)
        | st.sampled_from(list(words))
    )
    values = st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    )
    return values
