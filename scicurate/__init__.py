"""scicurate: Apache Beam pipelines that turn raw PDFs and web crawls into clean scientific text."""

__version__ = "0.1.0"
