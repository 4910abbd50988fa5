"""SLO console pages (placeholder until the SLO part lands)."""


def console_urls(site) -> list:
    return []
