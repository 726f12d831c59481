from pathlib import Path

from tessera.providers import capability_table

DOC = Path(__file__).parents[2] / "docs" / "providers.md"


def test_feature_matrix_in_docs_matches_the_drivers() -> None:
    assert capability_table() in DOC.read_text(), (
        "docs/providers.md is out of date; paste the output of "
        "`python -c 'from tessera.providers import capability_table; print(capability_table())'`"
    )
