"""Programs over an index: takedown, evaluation (``anygram eval``) and its pictures, and
fetching corpora and tokenizers from the package registries (``anygram fetch``)."""
