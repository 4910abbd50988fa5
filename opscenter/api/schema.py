"""OpenAPI description of our authentication (imported in AppConfig.ready)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "opscenter.api.authentication.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ops_<prefix>_<secret>",
            "description": "A personal API token from Account → API tokens. Read tokens may only GET.",
        }
