"""Language models over the query core: interpolated Kneser-Ney and text generation."""
