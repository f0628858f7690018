"""parceler: divide-and-conquer batch processing of very many files on AWS serverless."""

__version__ = "0.1.0"
