"""The query features over one opened index (:class:`~anygram.query.core.Searcher`): n-gram
queries, documents and search, CNF queries, whole-text analyses, and their result types."""
