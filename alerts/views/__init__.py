"""Console pages of alerting (placeholder until the pages land)."""


def console_urls(site) -> list:
    return []
