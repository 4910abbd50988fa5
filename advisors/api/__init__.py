"""REST API of the advisors app: advisors, content and its review actions (/api/v1/)."""
