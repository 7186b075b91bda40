"""The grid company's push feed: a pure codec (`codec`, with its careful path `careful`)
from a pushed body to readings and per-element rejections, and the meter-code lookup
(`meters`) injected into it."""
