"""What a prune removes: the indexed articles not found again, but never those that a
failed or partly read source may still hold."""

from __future__ import annotations

from .index import IndexedArticle
from .sources import SourceOutcome

# The root recorded for articles pushed through the API (`citebot serve`): no source lists
# them, so pruning never removes them.
PUSH_ROOT = "push:"


def prune_plan(
    indexed: dict[str, IndexedArticle], found: set[str], outcomes: dict[str, SourceOutcome]
) -> list[str]:
    """The indexed articles a prune removes: those not found again, except

    - none of a root that failed (missing, unreadable, no articles);
    - of a root not read completely, only those its source reports gone;
    - none from a document of the root that was found but not read fully;
    - none whose root is unknown (an index from before roots were recorded) while any
      root failed, since it may belong to that root;
    - none pushed through the API (``PUSH_ROOT``): only an explicit removal deletes those.

    Articles of a root not given this time are removed when not found (they were not
    looked for): a prune names every root the index should keep.
    """
    any_failed = any(o.failure for o in outcomes.values())
    gone = []
    for article_id, article in indexed.items():
        if article_id in found or article.root == PUSH_ROOT:
            continue
        outcome = outcomes.get(article.root) if article.root is not None else None
        if outcome is not None:
            if outcome.failure:
                continue
            if article_id in outcome.gone or (
                outcome.complete and not outcome.keeps(article.source)
            ):
                gone.append(article_id)
        elif article.root is None and (
            any_failed or any(o.keeps(article.source) for o in outcomes.values())
        ):
            continue
        else:
            gone.append(article_id)
    return gone
