"""greencredit: a real-time risk engine for low-carbon consumer credit.

The top-level folders of the repository (streams/, agents/, schemas/, models/,
infra/) are the architecture; they are importable as ``greencredit.<folder>``.
"""

__version__ = "0.1.0"
