"""Page parsers: PDF splitting, the low-cost MinerU parser, OCR, and their post-processing."""
