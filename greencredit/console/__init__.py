"""The fraud-ops web console: live cases with labelling, and lenders' AHP judgements.

``cases`` and ``typology`` are pure (the case store), ``lenders`` is pure (config edits),
``service`` does the Kafka I/O and ``web`` serves the pages and JSON API (aiohttp).
"""

__all__: list[str] = []
