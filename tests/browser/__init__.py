"""Tests in a real browser: the pages a person sees (headless Chromium)."""
